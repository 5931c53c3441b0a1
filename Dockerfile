# One image for the API, the worker and the migration job.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# Bytecode compiled at build, so the worker and the API start without compiling sources.
RUN python -m compileall -q /app
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --system --uid 10001 vult
USER vult
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.app:app_factory", "--host", "0.0.0.0", "--port", "8000"]
