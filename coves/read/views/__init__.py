"""View builders: the one function that assembles each response object."""
