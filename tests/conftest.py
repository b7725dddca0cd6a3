pytest_plugins = ["tidegate.testing.pytest_plugin"]
