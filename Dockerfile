# DermaScan Review: the HTTP API by default, the dashboard as the alternative command.
#   docker build -t dermascan .
#   docker run -p 8000:8000 dermascan                                   # API: http://localhost:8000/docs
#   docker run -p 8501:8501 dermascan streamlit run streamlit_app.py --server.address 0.0.0.0
# Not built in this project's CI (no Docker engine there); the commands mirror the README's.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 \
    DERMASCAN_REVIEW_DB=/data/reviews.sqlite3

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The engine, the app and the bundled model (model/ holds the .keras file and its card).
COPY dermascan/ dermascan/
COPY dashboard/ dashboard/
COPY pages/ pages/
COPY model/ model/
COPY streamlit_app.py .
COPY .streamlit/config.toml .streamlit/config.toml

# Non-root; the review database lives in a volume owned by that user.
RUN useradd --create-home --uid 10001 dermascan && mkdir /data && chown dermascan /data
USER dermascan
VOLUME /data

EXPOSE 8000 8501
# 0.0.0.0 inside the container only; publish the port behind a TLS reverse proxy (docs/deployment.md).
CMD ["python", "-m", "dermascan", "serve", "--host", "0.0.0.0", "--port", "8000"]
