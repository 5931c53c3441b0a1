"""Vult Orders: code shared by the workflow, the activities, the API and the worker."""
