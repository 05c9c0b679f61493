"""The aio-ray Ray Serve application (API, dashboard, live control); see :mod:`serve.app`."""

__all__: list[str] = []
