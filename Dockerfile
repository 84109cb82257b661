# forewarn services image: one image, two entrypoints (ingest, worker).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY forewarn ./forewarn
COPY ingest ./ingest
COPY streams ./streams
COPY detectors ./detectors
COPY notifiers ./notifiers
COPY simulator ./simulator
COPY evaluation ./evaluation
COPY scores ./scores
RUN pip install . && useradd --system --uid 10001 forewarn
USER forewarn
ENTRYPOINT ["forewarn"]
