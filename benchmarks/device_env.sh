# Sourced by the device scripts (gpu_check.sh, gpu_train.sh) from the repository root: makes
# `import av` work there. Carried wheels (.whl/: PyAV, DALI joined from its parts) are installed;
# without them the device image's Pillow reads images through benchmarks/pillow_av, which is enough
# for training and for gpu_forward.py, not for video.
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ]; then
  bash benchmarks/dali_parts.sh join .whl || return 1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
elif ! python3 -c "import av" 2>/dev/null && python3 -c "import PIL" 2>/dev/null; then
  export PYTHONPATH="$PWD/benchmarks/pillow_av:$PYTHONPATH"
  echo "no PyAV here: images are read through Pillow (benchmarks/pillow_av); video steps will fail"
fi
