# DistilLab's web app in a container; CPU torch by default.
#   docker build -t distillab .
#   docker run --rm -p 7860:7860 -v distillab-runs:/home/user/runs distillab
# CUDA build (run with --gpus all):
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t distillab:cuda .
# scripts/check_docker_install.sh replays the install steps below in a fresh virtual
# environment (CI has no Docker engine), so they cannot rot unnoticed.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# Hugging Face Spaces and most hosts run containers as uid 1000.
RUN useradd --create-home --uid 1000 user
ENV HOME=/home/user \
    HF_HOME=/home/user/.cache/huggingface \
    DISTILLAB_RUNS_DIR=/home/user/runs \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    TOKENIZERS_PARALLELISM=false \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /home/user/app

# torch first, from the index asked for: nothing later may pull a multi-GB CUDA build.
RUN pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
# The dependencies in their own layer (what a Space installs), cached across code changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY pyproject.toml README.md ./
COPY core ./core
COPY app ./app
COPY assets ./assets
RUN pip install --no-deps . && python -c "import core, app" && distillab --help > /dev/null

USER user
RUN mkdir -p "$DISTILLAB_RUNS_DIR" "$HF_HOME"
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GRADIO_SERVER_PORT', '7860') + '/', timeout=8)"]
CMD ["python", "-m", "app"]
