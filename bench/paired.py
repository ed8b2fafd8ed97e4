"""paired.py: run benchmark commands side by side in rotating order over several rounds and
report each metric and each ratio as median [min..max] over the rounds.

A ratio is computed inside each round from that round's two numbers (a paired ratio), so a
load that comes and goes between rounds moves both sides alike; the spread across rounds says
how much the machine moved. Every round records the 1-minute load average before it starts.

    python3 bench/paired.py --rounds 5 \
        --side tng='build/bench/bench_step --config tiny --batch 128' \
        --side torch='python3 bench/bench_step_torch.py --config tiny --batch 128' \
        --metric tng_ms='tng:step ([0-9.]+) ms' --metric torch_ms='torch:step ([0-9.]+) ms' \
        --ratio 'speed-up=torch_ms/tng_ms'

--side NAME=COMMAND   a shell command; run once per round, sides rotating their order
--metric NAME=SIDE:REGEX   the first group of the first match in SIDE's output, a number
--ratio LABEL=A/B     metric A divided by metric B, per round
Used by bench/bench_image.sh, bench/step_vs_open_clip.sh and bench/tokenizer_vs.sh.
"""
import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys


def split_pair(text, sep, what):
    if sep not in text:
        sys.exit(f"paired.py: {what} '{text}' has no '{sep}'")
    return text.split(sep, 1)


def load_average():
    return os.getloadavg()[0]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def spread(values):
    return f"{statistics.median(values):.3g} [{min(values):.3g}..{max(values):.3g}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--side", action="append", default=[], help="NAME=COMMAND")
    ap.add_argument("--metric", action="append", default=[], help="NAME=SIDE:REGEX")
    ap.add_argument("--ratio", action="append", default=[], help="LABEL=A/B")
    ap.add_argument("--show-output", action="store_true", help="print every command's output")
    args = ap.parse_args()

    sides = [split_pair(s, "=", "--side") for s in args.side]
    names = [n for n, _ in sides]
    metrics = []
    for m in args.metric:
        name, rest = split_pair(m, "=", "--metric")
        side, regex = split_pair(rest, ":", "--metric")
        if side not in names:
            sys.exit(f"paired.py: metric {name} names unknown side {side}")
        metrics.append((name, side, re.compile(regex)))
    ratios = []
    for r in args.ratio:
        label, expr = split_pair(r, "=", "--ratio")
        a, b = split_pair(expr, "/", "--ratio")
        ratios.append((label, a, b))

    print(f"# {datetime.datetime.now().isoformat(timespec='seconds')}  {cpu_model()}, "
          f"{os.cpu_count()} CPUs, {args.rounds} rounds, sides in rotating order")
    for name, command in sides:
        print(f"#   {name}: {command}")
    values = {name: [] for name, _, _ in metrics}
    loads = []
    for rnd in range(args.rounds):
        loads.append(load_average())
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        outputs = {}
        for name in order:
            command = dict(sides)[name]
            run = subprocess.run(command, shell=True, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"paired.py: side {name} failed ({run.returncode}):\n{run.stdout}{run.stderr}")
            outputs[name] = run.stdout + run.stderr
            if args.show_output:
                print(f"## round {rnd + 1}, {name}\n{outputs[name]}")
        row = []
        for name, side, regex in metrics:
            match = regex.search(outputs[side])
            if not match:
                sys.exit(f"paired.py: metric {name}: /{regex.pattern}/ not in {side}'s output:\n"
                         f"{outputs[side]}")
            values[name].append(float(match.group(1)))
            row.append(f"{name}={values[name][-1]:g}")
        row += [f"{label}={values[a][-1] / values[b][-1]:.3f}" for label, a, b in ratios]
        print(f"round {rnd + 1} (load {loads[-1]:.2f}, order {','.join(order)}): {'  '.join(row)}")
    print(f"load average before the rounds: {spread(loads)}, after: {load_average():.2f}")
    for name, _, _ in metrics:
        print(f"{name}: {spread(values[name])}")
    for label, a, b in ratios:
        per_round = [x / y for x, y in zip(values[a], values[b])]
        print(f"{label} ({a} / {b}): {spread(per_round)}")


if __name__ == "__main__":
    main()
