"""Media that posts and profiles carry: image sniffing, limits, base64 avatars and banners."""
