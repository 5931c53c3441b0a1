# One image for the API, the worker and the migration job.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# What ships, and only that: the service's packages, the worker, the migrations. Tests, the
# dev tooling (dev/: local stack, chaos suite, benchmark) and tasks.py stay out
# (tests/unit/test_deploy_files.py reads these lines and checks the image's file list).
COPY pyproject.toml alembic.ini worker.py ./
COPY vult/ vult/
COPY api/ api/
COPY workflows/ workflows/
COPY activities/ activities/
COPY migrations/ migrations/
# Bytecode compiled at build, so the worker and the API start without compiling sources.
RUN python -m compileall -q /app
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --system --uid 10001 vult
USER vult
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.app:app_factory", "--host", "0.0.0.0", "--port", "8000"]
