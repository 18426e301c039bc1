# The callwise worker image (docker-compose's `worker`). CPU only.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng sox libportaudio2 \
       tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa tesseract-ocr-fra tesseract-ocr-deu tesseract-ocr-jpn \
       tesseract-ocr-chi-sim \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml requirements-nodeps.txt README.md ./
COPY src src
COPY examples examples
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu . \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
ENV HF_HUB_OFFLINE=1 CALLWISE_DATA_DIR=/data
VOLUME /data
CMD ["callwise", "worker", "start"]
