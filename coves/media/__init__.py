"""Media that posts carry: image sniffing and limits."""
