# Sourced by gpu_check.sh from the repository root. On an offline GPU machine, wheels for what
# the image lacks (PyAV, DALI, onnxruntime-gpu, ...) can be put in $WHEELS (default ./wheels)
# and are installed from there without the network.
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WHEELS=${WHEELS:-wheels}
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-cache-dir --target /tmp/site "$WHEELS"/*.whl || return 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 -c "import av" 2>/dev/null || { echo "PyAV is not installed (pip install av, or put its wheel in $WHEELS)"; return 1; }
