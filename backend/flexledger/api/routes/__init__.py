"""The API's routes, one module a resource: parse, call the service, render."""
