"""Comment threads (getComments): parameters, assembly and the post it hangs from."""
