# rexforge serve on the CPU: docker build -t rexforge-serve . && docker run -p 8000:8000 rexforge-serve
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# torch first, from the CPU index: the package pins torch==2.13.0, and resolving that from the
# default index would pull a multi-GB CUDA build. Its own layer, so code changes reuse it.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md LICENSE NOTICE ./
COPY src ./src
RUN pip install ".[serve]"

# Not root: the service needs no privileges.
RUN useradd --create-home rexforge
USER rexforge

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"

# Flags (--model, --max-wait-ms, limits) can be appended: docker run ... rexforge serve --help
CMD ["rexforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
