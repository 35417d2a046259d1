"""The local web page: what it does (handlers) and how it looks and is served (layout: `serve`)."""
