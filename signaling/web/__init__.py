"""The browser side the server carries: the JavaScript client and the demo call page."""
