"""The one place each API view (postView, commentView, ...) is built."""
