"""Loggers: live log levels per logger, defaults in a ConfigMap, overrides on the pod."""
