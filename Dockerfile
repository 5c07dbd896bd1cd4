FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY queue_manager queue_manager
COPY admin admin
COPY frontend frontend
COPY worker worker
RUN pip install --no-cache-dir .
ENV CW_HOST=0.0.0.0 CW_PORT=8188 CW_DATA_DIR=/data
EXPOSE 8188
CMD ["comfy-workshop", "serve"]
