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

# The SQLite default lives on a volume, so jobs and watermarks survive a new container.
# The admin API listens on all interfaces, so it speaks HTTPS only: mount a certificate and its
# key at these paths (or point the variables elsewhere); without them `serve` exits with a clear
# error instead of sending the bearer token in clear.
RUN mkdir -p /data && chown cosell:cosell /data
VOLUME ["/data"]
ENV COSELL_DATABASE_URL=sqlite:////data/cosell.db \
    COSELL_ADMIN_TLS_CERT=/tls/tls.crt \
    COSELL_ADMIN_TLS_KEY=/tls/tls.key

USER cosell
EXPOSE 8443
# A liveness probe of this container's own port: the chain is verified against the mounted
# certificate (or COSELL_ADMIN_TLS_CA); the host name is not, since the probe dials 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,ssl,sys,urllib.request as u; c=ssl.create_default_context(cafile=os.environ.get('COSELL_ADMIN_TLS_CA', os.environ['COSELL_ADMIN_TLS_CERT'])); c.check_hostname=False; sys.exit(0 if u.urlopen('https://127.0.0.1:8443/health', timeout=4, context=c).status == 200 else 1)"

ENTRYPOINT ["cosell"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8443"]
