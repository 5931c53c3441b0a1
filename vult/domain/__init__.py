"""The order domain: statuses and transitions, money and pricing, order numbers, failure
codes, and the contracts passed between the API, the workflow and the activities.

Pure rules and value types. It imports nothing else of the project and no I/O library, so
the workflow sandbox passes it through and every side applies the same rules.
"""
