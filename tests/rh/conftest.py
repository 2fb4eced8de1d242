from tests.signature.conftest import serve_app, sim_settings, simulator, start_simulator  # noqa: F401
