"""The demo's torus encoders deployed on integers (int8 ExecuTorch program + integer head) against
the float model.

Per head and seed, the model is trained as `make demo` trains it (examples/ebjepa_cifar.py),
exported with ``torus_plugins.deploy.export`` (calibrated on --calibration training images),
loaded with ``deploy.load`` and compared on the test images with the float pipeline's codes
``quantize(to_turns(model(x)), bits)``: codes equal / within one step; P@1 of test queries against
the training set with device and with float codes (8 and 4 bits); where codes change (int8
activations alone, int8 last-layer weights alone, the integer head on ideal int8 activations); file
sizes; microseconds per sample on one thread (eager float torch, the ExecuTorch program, the numpy
integer head; best of --repeats, inside an flock of --lock if given). Each export folder also gets,
for the Cortex-M4 harness, the program's int8 activations of --queries test images
(queries_int8.npy, query_labels.npy) and the device codes of the training set (stored_codes.torc):
``python -m torus_plugins.deploy.cortex_m4 --head F/head.torh --codes F/stored_codes.torc
--activations F/queries_int8.npy``.

Usage::

    python examples/deploy_int8.py --out runs/deploy_int8 --lock /tmp/torus-bench.lock
    python examples/deploy_int8.py --quick --out /tmp/x                 # smoke test
"""

import argparse
import contextlib
import dataclasses
import fcntl
import os
import sys
import time
from importlib import metadata

import numpy as np
import torch
from torus_plugins import deploy, report, to_turns
from torus_plugins.codes import quantize, save_codes
from torus_plugins.deploy import code_agreement
from torus_plugins.metrics import retrieval

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import ebjepa_cifar  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="runs/deploy_int8", help="output folder")
    p.add_argument("--heads", default="torusN,torusC", help="comma-separated torus heads")
    p.add_argument("--seeds", type=common.positive, default=3, help="seeds 0, 1, ...")
    p.add_argument("--calibration", type=common.positive, default=256, help="calibration images")
    p.add_argument("--queries", type=common.positive, default=128, help="int8 queries for the M4")
    p.add_argument("--repeats", type=common.positive, default=5, help="timings: best of this many")
    p.add_argument("--lock", default=None, help="file to flock around the timings")
    p.add_argument("--jobs", type=common.positive, default=2, help="training runs in parallel")
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, small subsets")
    args = p.parse_args(argv)
    args.heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    if not args.heads or any(h not in ebjepa_cifar.HEADS or not common.is_torus(h)
                             for h in args.heads):
        p.error(f"--heads: expected torus heads of examples/ebjepa_cifar.py, got {args.heads}")
    if args.quick:
        args.seeds, args.calibration, args.repeats, args.jobs = 1, 64, 2, 1
    return args


def demo_args(args):
    """The training settings of `make demo` (ebjepa_cifar.py defaults; --quick passes through)."""
    return ebjepa_cifar.parse_args(["--out", args.out] + (["--quick"] if args.quick else []))


def linear_input(model, linear, x):
    """The float activations feeding ``linear`` when ``model`` runs on ``x``."""
    seen = []
    handle = linear.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


def float_codes_of_linear(inputs, weight, bias, geometry, bits):
    """quantize(turns) of the last Linear (in float64, any weights) followed by the head."""
    pre = inputs.double() @ torch.as_tensor(weight).double().T + torch.as_tensor(bias).double()
    return quantize(to_turns(pre) if geometry == "torusN" else pre, bits).numpy()


def fidelity(model, encoder, geometry, x, ref_x, y, ref_y, linear) -> dict:
    """Device codes against the float pipeline's at 8 and 4 bits, P@1 with each, and the agreement
    of int8 activations alone, int8 last-layer weights alone and the head on ideal activations."""
    with torch.no_grad():
        z, ref_z = model(x), model(ref_x)
    q, ref_q = encoder.activations(x).numpy(), encoder.activations(ref_x).numpy()
    a, h = linear_input(model, linear, x), encoder.head
    ideal = torch.clamp(torch.round(a / h.input_scale) + h.input_zero_point, -128, 127)
    out = {"p1_float32": retrieval(z, y, ref_z, ref_y, geometry=geometry)["precision_at_1"]}
    for bits in (8, 4):
        head = dataclasses.replace(h, bits=bits, multiplier=None, shift=None)
        float_q, float_ref = quantize(to_turns(z), bits).numpy(), quantize(to_turns(ref_z), bits)
        device = head.codes(q)

        def p1(codes, ref_codes, bits=bits):
            return retrieval(codes, y, ref_codes, ref_y, geometry="codes", bits=bits)["precision_at_1"]

        row = {"agreement": code_agreement(device, float_q, bits),
               "int8_activations_only": code_agreement(float_codes_of_linear(
                   h.input_scale * (ideal - h.input_zero_point), linear.weight, linear.bias,
                   geometry, bits), float_q, bits),
               "int8_weights_only": code_agreement(float_codes_of_linear(
                   a, h.weight_scale * h.weight.astype(np.float64),
                   h.input_scale * h.weight_scale * h.bias.astype(np.float64), geometry, bits),
                   float_q, bits),
               "integer_head_on_ideal_activations": code_agreement(
                   head.codes(ideal.to(torch.int8).numpy()), float_q, bits),
               "p1_float_codes": p1(float_q, float_ref.numpy()),
               "p1_device_codes": p1(device, head.codes(ref_q))}
        row["p1_gap"] = row["p1_float_codes"] - row["p1_device_codes"]
        out[f"{bits}bit"] = row
    with torch.no_grad():
        pre = linear(a)
    if geometry == "torusC":  # the turns an int8 grid on the head's input would have to cover
        out["torusC_turns_span_test"] = float(pre.max() - pre.min())
    else:  # code steps moved, for the quarter of pairs nearest the origin and for the others
        norm = pre.unflatten(-1, (-1, 2)).norm(dim=-1).numpy()
        steps = np.abs(h.codes(q).astype(int) - quantize(to_turns(z), 8).numpy().astype(int))
        steps = np.minimum(steps, 256 - steps)
        small = norm <= np.quantile(norm, 0.25)
        out["torusN_mean_steps_by_norm"] = {"smallest_quarter": float(steps[small].mean()),
                                            "other_pairs": float(steps[~small].mean())}
        big = steps > 4
        out["torusN_moves_over_4_steps_in_smallest_quarter"] = (
            float(small[big].mean()) if big.any() else None)
    return out


def run(head: str, seed: int, args) -> dict:
    """Train (as the demo), export, load, evaluate; write the Cortex-M4 hand-off files."""
    model, data, tr, history, reason, _ = ebjepa_cifar.fit(head, seed, demo_args(args))
    model.eval()
    geometry = ebjepa_cifar.HEADS[head][0]
    x_ref, y_ref = data["norm"](data["train_x"][tr]), data["train_y"][tr]
    x, y = data["norm"](data["test_x"]), data["test_y"]
    pick = torch.randperm(len(x_ref), generator=torch.Generator().manual_seed(seed))
    folder = os.path.join(args.out, f"{head}_seed{seed}")
    t0 = time.perf_counter()
    info = deploy.export(model, x_ref[pick[:args.calibration]].split(64), folder, overwrite=True)
    export_seconds = time.perf_counter() - t0
    encoder = deploy.load(folder)
    linear = model.get_submodule(info["model"]["linear"])
    result = fidelity(model, encoder, geometry, x, x_ref, y, y_ref, linear)
    np.save(os.path.join(folder, "queries_int8.npy"), encoder.activations(x[:args.queries]).numpy())
    np.save(os.path.join(folder, "query_labels.npy"), y[:args.queries].numpy())
    save_codes(os.path.join(folder, "stored_codes.torc"), encoder(x_ref).numpy(), 8, geometry,
               meta={"what": "device codes of the training set", "seed": seed})
    files, requant = info["files"], info["requantised_head_input"] or {}
    float_bytes = sum(4 * t.numel() for t in model.state_dict().values() if t.is_floating_point())
    return {**result, "head": head, "seed": seed, "n_test": len(y), "n_reference": len(y_ref),
            "stop_reason": reason, "best_val": max(history["val_p1"]),
            "epochs": len(history["val_p1"]), "export_seconds": round(export_seconds, 1),
            "pte_bytes": files["encoder.pte"]["bytes"], "head_bytes": files["head.torh"]["bytes"],
            "c_header_bytes": files["head.h"]["bytes"], "float32_model_bytes": float_bytes,
            "pte_equal_to_pt2e_reference": info["checks"]["equal_to_pt2e_reference"],
            "levels_per_turn_if_requantised": requant.get("levels_per_turn"),
            "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}


def best_us(fn, batches, repeats: int) -> float:
    """Microseconds per sample of ``fn`` over ``batches``, best of ``repeats``."""
    n, best = sum(len(b) for b in batches), float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            fn(b)
        best = min(best, time.perf_counter() - t0)
    return 1e6 * best / n


@contextlib.contextmanager
def flock(path):
    if path is None:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def timings(runs, args) -> dict:
    """us/sample at batch 1 and at the program's largest batch, one thread: eager float model, the
    ExecuTorch program, the integer head (numpy) on the program's output."""
    eb = demo_args(args)
    data = ebjepa_cifar.load_data(eb)
    x = data["norm"](data["test_x"])[:120]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    deploy.set_runtime_threads(1)
    out = {}
    with flock(args.lock):
        for r in runs:
            model = ebjepa_cifar.build_model(r["head"], eb)
            model.load_state_dict(r["state_dict"])
            model.eval()
            encoder = deploy.load(os.path.join(args.out, f"{r['head']}_seed{r['seed']}"))
            row = {"max_batch": encoder.max_batch}
            for key, batch in (("batch1", 1), ("batch_max", encoder.max_batch)):
                xs = list(x.split(batch))
                qs = [encoder.activations(b).numpy() for b in xs]
                with torch.no_grad():
                    eager = best_us(model, xs, args.repeats)
                program = best_us(encoder.activations, xs, args.repeats)
                head = best_us(encoder.head.codes, qs, args.repeats)
                row[key] = {"eager_float_us": eager, "executorch_program_us": program,
                            "integer_head_us": head, "eager_over_program": eager / program}
            out[(r["head"], r["seed"])] = row
    torch.set_num_threads(threads)
    return out


ROWS = [  # label, path in a head's metrics, digits
    ("codes equal to float 8-bit", ("8bit", "agreement", "equal"), 3),
    ("codes within one step (8-bit)", ("8bit", "agreement", "within_one"), 3),
    ("  equal: int8 activations only", ("8bit", "int8_activations_only", "equal"), 3),
    ("  equal: int8 last-layer weights only", ("8bit", "int8_weights_only", "equal"), 3),
    ("  equal: int head on ideal int8 act.", ("8bit", "integer_head_on_ideal_activations",
                                              "equal"), 3),
    ("P@1 float32", ("p1_float32",), 3),
    ("P@1 float 8-bit codes", ("8bit", "p1_float_codes"), 3),
    ("P@1 device 8-bit codes", ("8bit", "p1_device_codes"), 3),
    ("P@1 gap 8-bit (float - device)", ("8bit", "p1_gap"), 3),
    ("codes equal to float 4-bit", ("4bit", "agreement", "equal"), 3),
    ("codes within one step (4-bit)", ("4bit", "agreement", "within_one"), 3),
    ("P@1 float 4-bit codes", ("4bit", "p1_float_codes"), 3),
    ("P@1 device 4-bit codes", ("4bit", "p1_device_codes"), 3),
    ("P@1 gap 4-bit (float - device)", ("4bit", "p1_gap"), 3),
    (".pte bytes", ("pte_bytes",), 0),
    ("integer head bytes (.torh)", ("head_bytes",), 0),
    ("C header bytes (head.h)", ("c_header_bytes",), 0),
    ("float32 model bytes", ("float32_model_bytes",), 0),
    ("us/sample, batch 1: eager float", ("timing", "batch1", "eager_float_us"), 1),
    ("  ExecuTorch program", ("timing", "batch1", "executorch_program_us"), 1),
    ("  integer head (numpy)", ("timing", "batch1", "integer_head_us"), 1),
    ("  eager / program", ("timing", "batch1", "eager_over_program"), 2),
    ("us/sample, largest batch: eager float", ("timing", "batch_max", "eager_float_us"), 1),
    ("  ExecuTorch program", ("timing", "batch_max", "executorch_program_us"), 1),
    ("  integer head (numpy)", ("timing", "batch_max", "integer_head_us"), 1),
    ("  eager / program", ("timing", "batch_max", "eager_over_program"), 2),
    ("program's largest batch", ("timing", "max_batch"), 0),
    ("torusN: mean steps, quarter of pairs nearest 0", ("torusN_mean_steps_by_norm",
                                                         "smallest_quarter"), 2),
    ("torusN: mean steps, other pairs", ("torusN_mean_steps_by_norm", "other_pairs"), 2),
    ("torusN: moves > 4 steps in that quarter", ("torusN_moves_over_4_steps_in_smallest_quarter",),
     2),
    ("torusC: turns spanned by the head input", ("torusC_turns_span_test",), 2),
    ("torusC: levels per turn if requantised", ("levels_per_turn_if_requantised",), 1),
]


def table(metrics: dict) -> str:
    def cell(m, path, digits):
        for key in path:
            m = m.get(key) if isinstance(m, dict) else None
        return report.format_leaf(m, digits)

    rows = [[label] + [cell(metrics[h], path, digits) for h in metrics]
            for label, path, digits in ROWS]
    return report.format_grid("", ["mean +- std over seeds"] + list(metrics), rows)


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    seeds = list(range(args.seeds))
    prov = report.provenance(args, seeds, 1)
    prov["versions"] = {d: metadata.version(d) for d in ("executorch", "torchao")}
    print(f"{report.describe(prov)}; {args.jobs} training run(s) in parallel"
          f"{'; QUICK' if args.quick else ''}", flush=True)
    runs = common.run_jobs(run, [(h, s, args) for h in args.heads for s in seeds], args.jobs)
    times = timings(runs, args)
    metrics = {}
    for head in args.heads:
        per_seed = []
        for r in (r for r in runs if r["head"] == head):
            print(f"  {head} seed {r['seed']}: {r['stop_reason']}; "
                  f"export {r['export_seconds']:.0f} s")
            drop = ("state_dict", "stop_reason", "seconds", "cpu_seconds")
            per_seed.append({k: v for k, v in r.items() if k not in drop}
                            | {"timing": times[(head, r["seed"])]})
        metrics[head] = report.aggregate(per_seed) | {"per_seed": per_seed}
    print(f"\nInteger deployment against the float pipeline, {len(seeds)} seed(s): "
          f"{runs[0]['n_test']} test queries against {runs[0]['n_reference']} training images; "
          f"timings on one thread, best of {args.repeats}" + table(metrics))
    prov = common.write_results(args.out, prov, args, metrics, args.jobs)
    return {"provenance": prov, "metrics": metrics}


if __name__ == "__main__":
    main()
