"""`lmpress serve`: a local web page over the codec and the inspector.

`command.main` is the subcommand; `app.create_app` builds the FastAPI application;
`service.Service` holds the loaded models and does the coding (no web imports). Nothing
here is imported by the rest of lmpress, and this package imports FastAPI only in app.py,
so `lmpress serve` can say which extra is missing."""
