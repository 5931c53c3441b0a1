"""What develops and proves the service, never shipped: the local stack (`dev.stack`), the
chaos suite (`dev.chaos`) and the benchmark (`dev.bench`). The production image holds none of
it (Dockerfile; tests/unit/test_deploy_files.py reads the image's inputs)."""
