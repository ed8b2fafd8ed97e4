# shellcheck shell=bash
# synth_world.sh: sourced by data/run_demo.sh and data/ablate.sh: the synthetic world they
# share.
#
# synth_world DIR BIN [tng_synth options...] (re)writes the world at DIR with seed 1, every
# phrasing set (std, alt and the in-template one) and the given options, unless DIR already
# holds the world of exactly these arguments (recorded in DIR/tng_synth.args). The default
# options give the historical world byte for byte, plus the in-template files.
synth_world() {
    local dir=$1 bin=$2
    shift 2
    local args="--seed 1 --phrasing all${*:+ $*}"
    if [ -f "$dir/world.json" ] && [ "$(cat "$dir/tng_synth.args" 2>/dev/null)" = "$args" ]; then return; fi
    echo "== generating the synthetic world in $dir ($args)"
    rm -f "$dir/tng_synth.args"
    # shellcheck disable=SC2086 # args are words on purpose
    "$bin/tng_synth" --out "$dir" $args 2>&1 | grep -v " images (" # keep the caption statistics
    echo "$args" >"$dir/tng_synth.args"
}
