"""Staff API resources and their console pages, one module per resource."""
