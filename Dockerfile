# cosell-connector: `cosell serve` (scheduled sync + admin API) as a non-root user.
# Build: docker build -t cosell-connector .   Run with COSELL_* variables (see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system cosell && useradd --system --gid cosell --home-dir /app --create-home cosell
WORKDIR /app

COPY pyproject.toml README.md ./
COPY connector ./connector
RUN pip install ".[postgres]"

USER cosell
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"

ENTRYPOINT ["cosell"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
