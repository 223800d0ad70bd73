# Sourced by bench/live_latency.sh and bench/live_vs_llama_server.sh (needs $here, $py, $work,
# $rawflow): the synthesized 12B-shaped model and the live RTSP test feeds both measure on.

# model, mmproj: `rawflow model synth --preset 12b-2l --layers L --dtype q4_0` in $work, made once.
synth_model() {  # layers
  model=$work/g12-${1}l.gguf mmproj=$work/mmproj-g12-${1}l.gguf
  [ -f "$model" ] || "$rawflow" model synth --preset 12b-2l --layers "$1" --dtype q4_0 --mmproj \
    --out "$model" >/dev/null
}

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Every process started here is stopped when the script exits.
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# feed_urls, feed_pids: N fresh test-server feeds (tone + AAC, a 160x120 5 fps H.264 picture),
# played in real time; their logs are $work/server-TAG-I.out.
start_feeds() {  # tag count
  feed_urls=() feed_pids=()
  local i port
  for i in $(seq "$2"); do
    port=$(free_port)
    $py "$here/tests/rtsp/rtsp_server.py" "$port" --audio aac --size 160x120 --fps 5 \
      >"$work/server-$1-$i.out" 2>&1 &
    feed_pids+=($!); pids+=($!)
    for _ in $(seq 100); do grep -q READY "$work/server-$1-$i.out" && break; sleep 0.1; done
    feed_urls+=("rtsp://127.0.0.1:$port/live")
  done
}
stop_feeds() {
  local p
  for p in "${feed_pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
