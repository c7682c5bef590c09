"""The HTTP service of `campaign serve`: single messages and campaigns over HTTP, on the public Python API
and the data model's stores (`docs/http-api.md`). `app.make_app` builds one process's application."""
