# Sourced by the scripts: UV is the uv command, installed with pip when the machine lacks it.
# `python3 -m uv` works even where pip's script folder is not on PATH.
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.4"
  UV=(python3 -m uv)
fi
