"""Run the repository adapters inside real upstream checkouts; print one row per (repository, mode).

A local check, not part of the test suite (CI has no upstream copies): ``make upstream-check
UPSTREAM=dir``, with

* ``dir/SupCon-Framework``: a git clone holding the ``torus`` and ``main`` branches (local or
  ``origin/...``); each branch is exported with ``git archive`` to a temporary folder, the clone is
  not changed;
* ``dir/ProtoCLR``: a ProtoCLR checkout;
* ``dir/eb_jepa``: an eb_jepa checkout.

A missing checkout is skipped with a message. Each (repository, branch) runs in its own Python
process (upstream modules are process state) and applies the patch the adapter documents, then runs
upstream's own code: one short training epoch and upstream's validation call, on tiny SYNTHETIC data
written in upstream's on-disk format (CIFAR-10 python batches, ProtoCLR's class folders of .pt
waveforms and pow.pt, Moving MNIST's .npy). Columns: build (the patched model and losses were
built), loss (upstream's training loop, first step or epoch mean), validation (the shape upstream's
validation embedded, and its metric), equality (largest difference between the patched loss and
upstream's own loss on the same inputs; SupCon-Framework: each criterion on a freshly built model,
the trained model's in the note, where KoLeo's -log(distance + eps) is ill-conditioned at
near-duplicate points). This machine has no GPU and no network, so the workers make three
environment adaptations, printed under the table: ``.cuda()`` is the identity, torchvision backbones
are built without pretrained weights, and torchvision's CIFAR checksum test accepts the synthetic
files.

Usage: python tests/upstream_check.py --upstream DIR [--only supcon,protoclr,eb_jepa] (or
supcon_torus, supcon_main)
"""

import argparse
import json
import os
import pathlib
import pickle
import runpy
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
PROJECT = HERE.parent
ROW = "UPSTREAM-CHECK-ROW "
ADAPTATIONS = {
    "cuda": ".cuda() is the identity (no GPU here)",
    "weights": "torchvision backbones built with weights=None (no download)",
    "cifar": "torchvision's CIFAR-10 checksum test accepts the synthetic batches",
    "wandb": "wandb logging off (log_wandb=false); validation still builds wandb.Video",
}


def emit(**row):
    """Hand one table row to the parent process."""
    print(ROW + json.dumps(row, default=str), flush=True)


def fmt(x, digits=4):
    return "-" if x is None else (f"{x:.{digits}g}" if isinstance(x, float) else str(x))


# ------------------------------------------------------------ synthetic data in upstream formats


def write_cifar10(root, n_train_per_batch=4, n_test=8, seed=0):
    """CIFAR-10's python layout (cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta),
    random images with 10 classes cycling. These are our own files: reading them back with pickle is
    safe."""
    rng = np.random.default_rng(seed)
    folder = pathlib.Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name, n, offset):
        labels = [(offset + i) % 10 for i in range(n)]
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)

    for k in range(1, 6):
        batch(f"data_batch_{k}", n_train_per_batch, k)
    batch("test_batch", n_test, 0)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return str(root)


def accept_synthetic_cifar():
    """torchvision compares every CIFAR file with the real set's md5; accept ours when the file
    exists."""
    import torchvision.datasets.cifar

    torchvision.datasets.cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)


def cuda_is_identity():
    import torch

    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self


# ---------------------------------------------------------------- SupCon-Framework

SUPCON_MODES = ["sphere", "torusN", "torusC", "hyprs", "torul", "torus"]


def supcon_config(projmode, data_dir):
    return {
        "model": {
            "backbone": "resnet18",
            "ckpt_pretrained": None,
            "projection_dim": 16,
            "num_classes": None,
        },
        "train": {
            "n_epochs": 1,
            "amp": False,
            "ema": True,
            "ema_decay_per_epoch": 0.3,
            "logging_name_suffix": None,
            "target_metric": "precision_at_1",
            "stage": "first",
        },
        "dataset": data_dir,
        "dataloaders": {"train_batch_size": 8, "valid_batch_size": 8, "num_workers": 0},
        "optimizer": {"name": "SGD", "params": {"lr": 0.1}},
        "scheduler": {"name": "CosineAnnealingLR", "params": {"T_max": 1, "eta_min": 0.01}},
        "projmode": projmode,
        "criteria": [
            {"name": "SupCon", "params": {"temperature": 0.1}},
            {"name": "koleo", "weight": 1},
        ],
    }


def _supcon_setup(root):
    import torchvision

    sys.path.insert(0, root)
    os.chdir(root)
    cuda_is_identity()
    accept_synthetic_cifar()
    import tools.backbones

    for name in ("resnet18",):
        builder = getattr(torchvision.models, name)
        tools.backbones.BACKBONES[name] = lambda pretrained=False, _b=builder: _b(weights=None)
    write_cifar10(os.path.join(root, "data", "cifar10"))


def _two_views(loader):
    """A fixed two-view batch from a one-view loader: (images [2b, ...], labels [b])."""
    import torch

    images, labels = next(iter(loader))
    b = len(labels) // 2
    return torch.cat([images[:b], images[b : 2 * b]]), labels[:b], b


def supcon_terms(model, criteria, images, labels, b):
    """([weighted value of each criterion], closest pair distance) on a fixed two-view batch, in
    eval mode."""
    import torch

    model.eval()
    with torch.no_grad():
        z = torch.stack(torch.split(model(images), [b, b]), dim=1)
        values = [float(c(z, labels)) * w for c, w in criteria if w]
        return values, float(torch.pdist(z.flatten(0, 1)).min())


def worker_supcon_torus(root, commit):
    import torch
    import yaml

    _supcon_setup(root)
    import tools.losses
    import tools.models
    from tools import utils

    from torus_plugins.adapters.supcon_framework import patch

    seen = {}
    original = {
        name: getattr(utils, name)
        for name in ("train_epoch_constructive", "compute_embeddings", "validation_constructive")
    }

    def train_epoch(*args, **kwargs):
        seen["loss"] = original["train_epoch_constructive"](*args, **kwargs)["loss"]
        return {"loss": seen["loss"]}

    def compute_embeddings(*args, **kwargs):
        embeddings, labels = original["compute_embeddings"](*args, **kwargs)
        seen.setdefault("shapes", []).append(tuple(embeddings.shape))
        return embeddings, labels

    def validation(*args, **kwargs):
        metrics = original["validation_constructive"](*args, **kwargs)
        seen.setdefault("p_at_1", []).append(float(metrics["precision_at_1"]))
        return metrics

    utils.train_epoch_constructive, utils.compute_embeddings = train_epoch, compute_embeddings
    utils.validation_constructive = validation

    def run_train_py(projmode):
        with open("config.yml", "w") as f:
            yaml.safe_dump(supcon_config(projmode, "data/cifar10"), f)
        sys.argv = ["train.py", "--config_name", "config.yml"]
        return runpy.run_path(os.path.join(root, "train.py"), run_name="__main__")

    for projmode in SUPCON_MODES:
        seen.clear()
        row = dict(repo="SupCon-Framework", ref=f"torus@{commit}", mode=projmode, build=False)
        try:
            torch.manual_seed(0)
            with patch(tools.models, tools.losses, geometry=projmode):
                g = run_train_py(projmode)
                row["build"] = True
                model, criteria = g["model"], g["criteria"]
                head_shape, encoder_shape = seen["shapes"][0], seen["shapes"][2]
                images, labels, b = _two_views(g["loaders"]["train_features_loader"])
                torch.manual_seed(1)
                # a model not yet trained
                fresh = utils.build_model("resnet18", projection_dim=16, projmode=projmode)
                ours = {
                    "trained": supcon_terms(model, criteria, images, labels, b),
                    "fresh": supcon_terms(fresh, criteria, images, labels, b),
                }
            # unpatched: upstream's model and losses
            params = supcon_config(projmode, "data/cifar10")
            theirs_criteria = utils.build_optim(
                model, params["optimizer"], None, params["criteria"], projmode
            )["criteria"]
            theirs = {
                "trained": supcon_terms(model, theirs_criteria, images, labels, b),
                "fresh": supcon_terms(fresh, theirs_criteria, images, labels, b),
            }
            diffs = {k: [abs(a - c) for a, c in zip(ours[k][0], theirs[k][0])] for k in ours}
            row.update(
                loss=seen["loss"],
                validation=f"{head_shape} head, {encoder_shape} encoder, "
                f"P@1 {seen['p_at_1'][0]:.2f}",
                equality=max(diffs["fresh"]),
                note=f"run {g['logging_name']}; trained model: SupCon/KoLeo differ by "
                f"{diffs['trained'][0]:.1e}/{diffs['trained'][1]:.1e} (closest pair "
                f"{ours['trained'][1]:.1e})",
            )
        except Exception as error:  # reported in the table, not hidden
            row.update(error=f"{type(error).__name__}: {str(error)[:200]}")
        emit(**row)

    # a config/patch mismatch is refused before train.py removes any folder
    row = dict(
        repo="SupCon-Framework",
        ref=f"torus@{commit}",
        mode="config torusC, patch torusN",
        build=False,
    )
    name = "supcon_stage_first_resnet18_cifar10_D16_torusC_koleo1"
    sentinel = pathlib.Path("weights", name, "keep")
    sentinel.parent.mkdir(parents=True, exist_ok=True)
    sentinel.write_text("an earlier run")
    with patch(tools.models, tools.losses, geometry="torusN"):
        try:
            run_train_py("torusC")
            row.update(error="not refused")
        except ValueError as error:
            intact = sentinel.read_text() == "an earlier run"
            row.update(
                validation="refused: ValueError",
                note=f"{str(error)[:80]}...; earlier run intact: {intact}",
            )
        except Exception as error:
            row.update(error=f"{type(error).__name__}: {str(error)[:200]}")
    emit(**row)


def worker_supcon_main(root, commit):
    import torch

    _supcon_setup(root)
    import tools.losses
    import tools.models
    from tools import utils

    from torus_plugins.adapters import supcon_framework as tsf

    row = dict(repo="SupCon-Framework", ref=f"main@{commit}", mode="patch torusN", build=False)
    try:
        tsf.patch(tools.models, tools.losses, geometry="torusN")
        row.update(error="patch accepted on main")
    except ValueError as error:
        row.update(validation="refused at patch()", note=str(error)[:90] + "...")
    emit(**row)

    # the sphere drop-in loss inside main's own training loop and validation
    row = dict(
        repo="SupCon-Framework", ref=f"main@{commit}", mode="sphere drop-in SupConLoss", build=False
    )
    try:
        torch.manual_seed(0)
        transforms = utils.build_transforms(second_stage=False)
        loaders = utils.build_loaders(
            "data/cifar10", transforms, {"train_batch_size": 8, "valid_batch_size": 8}, 0
        )
        model = utils.build_model("resnet18", projection_dim=16)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        criteria = [(tsf.SupConLoss(temperature=0.1, projmode="sphere"), 1)]
        row["build"] = True
        loss = utils.train_epoch_constructive(
            loaders["train_supcon_loader"], model, criteria, optimizer, None, None
        )["loss"]
        shapes = []
        original = utils.compute_embeddings

        def compute_embeddings(*args, **kwargs):
            out = original(*args, **kwargs)
            shapes.append(tuple(out[0].shape))
            return out

        utils.compute_embeddings = compute_embeddings
        metrics = utils.validation_constructive(
            loaders["valid_loader"], loaders["train_features_loader"], model, None
        )
        images, labels, b = _two_views(loaders["train_features_loader"])
        model.eval()
        with torch.no_grad():
            z = torch.stack(torch.split(model(images), [b, b]), dim=1)
            diff = abs(
                float(criteria[0][0](z, labels))
                - float(tools.losses.SupConLoss(temperature=0.1)(z, labels))
            )
        row.update(
            loss=loss, validation=f"{shapes[0]}, P@1 {metrics['precision_at_1']:.2f}", equality=diff
        )
    except Exception as error:
        row.update(error=f"{type(error).__name__}: {str(error)[:200]}")
    emit(**row)


# ---------------------------------------------------------------- ProtoCLR


PROTOCLR_MODES = ("sphere", "torusN", "torusC")


def worker_protoclr(root, commit):
    import torch

    sys.path.insert(0, str(PROJECT / "examples"))
    from synthetic_birb import write_synthetic_birb

    data = write_synthetic_birb(tempfile.mkdtemp(prefix="protoclr-data-"), seconds=6.0, quick=True)
    for path in pathlib.Path(data).rglob("*.pt"):  # ProtoCLR reads mono clips as [1, samples]
        item = torch.load(path)
        if isinstance(item, dict):
            item["data"] = item["data"].unsqueeze(1)
        else:
            item = item.unsqueeze(0)
        torch.save(item, path)
    for species in sorted(pathlib.Path(data, "train").iterdir())[2:]:  # one batch of 8: 2 x 4 clips
        for clip in species.iterdir():
            clip.unlink()
        species.rmdir()
    for species in pathlib.Path(data, "train").iterdir():
        for clip in sorted(species.iterdir())[4:]:
            clip.unlink()
    sys.path.insert(0, root)
    os.chdir(root)
    sys.argv = [
        "train_encoder.py",
        "--traindir",
        os.path.join(data, "train"),
        "--evaldir",
        os.path.join(data, "eval"),
    ]
    sys.argv += "--device cpu --epochs 1 --bs 8 --nworkers 1 --nruns 2".split()
    sys.argv += "--loss protoclr --tau 0.1".split()
    import losses
    import train_utils

    from torus_plugins.adapters.normalize import torus_normalize
    from torus_plugins.adapters.protoclr import patch

    upstream_loss = losses.ProtoCLRLoss
    seen = {}
    train_epoch, fewshot_val = train_utils.train_epoch, train_utils.fewshot_val

    def recording_train_epoch(*args, **kwargs):
        out = train_epoch(*args, **kwargs)
        seen["loss"] = float(out[-1])
        return out

    def recording_fewshot_val(encoder, dataset, *args, **kwargs):
        hook = encoder.register_forward_hook(
            lambda m, i, o: seen.setdefault("rows", []).append(o.shape)
        )
        try:
            seen["acc"] = fewshot_val(encoder, dataset, *args, **kwargs)
        finally:
            hook.remove()
        return seen["acc"]

    train_utils.train_epoch, train_utils.fewshot_val = recording_train_epoch, recording_fewshot_val
    for mode in PROTOCLR_MODES:
        seen.clear()
        row = dict(repo="ProtoCLR", ref=f"main@{commit}", mode=mode, build=False)
        try:
            torch.manual_seed(0)
            with patch(losses, geometry=mode):
                g = runpy.run_path(os.path.join(root, "train_encoder.py"), run_name="__main__")
                row["build"] = True
                encoder, projector, transform = g["encoder"], g["projector"], g["val_transform"]
                x, y = next(iter(g["train_loader"]))
                encoder.eval(), projector.eval()
                with torch.no_grad():
                    h1 = projector(encoder(transform(x)))
                    h2 = projector(encoder(transform(torch.roll(x, 1600, dims=-1))))
                    ours = float(g["loss_fn"](h1, h2, y))
            with torch.no_grad():  # upstream's loss, unpatched, on the torus embeddings
                theirs = float(
                    upstream_loss(0.1)(
                        torus_normalize(h1, geometry=mode), torus_normalize(h2, geometry=mode), y
                    )
                )
            rows = sum(s[0] for s in seen["rows"])
            acc, std = seen["acc"]
            row.update(
                loss=seen["loss"],
                validation=f"({rows}, {seen['rows'][0][1]}) encoder, 1-shot "
                f"{float(acc):.2f}+-{float(std):.2f}",
                equality=abs(ours - theirs),
            )
        except Exception as error:
            row.update(error=f"{type(error).__name__}: {str(error)[:200]}")
        emit(**row)


# ---------------------------------------------------------------- eb_jepa

EB_MODES = [
    (None, {"uniformity_coeff": 0.0}),
    ("sphere", {}),
    ("torusN", {}),
    ("torusC", {}),
    ("torusN", {"cov": "toroidal"}),
]


VIDEO_MODES = EB_MODES


def _eb_mode_name(projection, options):
    name = str(projection)
    return name + "".join(f", {k}={v}" for k, v in options.items())


def _upstream_on_circles(upstream_cls, terms, *args, **kwargs):
    """Upstream's own loss object with its hinge margin set to the adapter's (instance attribute
    only)."""
    loss = upstream_cls(*args, **kwargs)
    loss.std_loss_fn.std_margin = terms.std_margin
    return loss


def worker_eb_jepa_image(root, commit):
    import torch

    sys.path.insert(0, root)
    os.chdir(root)
    accept_synthetic_cifar()
    data = write_cifar10(tempfile.mkdtemp(prefix="ebjepa-cifar-"), n_train_per_batch=8, n_test=16)
    os.environ["EBJEPA_DSETS"] = data
    import eb_jepa.losses

    from torus_plugins.adapters.eb_jepa import patch

    upstream_vicreg = eb_jepa.losses.VICRegLoss
    for projection, options in EB_MODES:
        if options.get("cov") == "toroidal":
            continue  # image rows: the isotropic covariance of the example
        row = dict(
            repo="eb_jepa",
            ref=f"main@{commit} image_jepa",
            mode=_eb_mode_name(projection, options),
            build=False,
        )
        try:
            torch.manual_seed(0)
            with patch(eb_jepa.losses, geometry=projection, **options):
                sys.modules.pop("examples.image_jepa.main", None)
                # imported now, its `from eb_jepa.losses import VICRegLoss` gets the patched class
                import examples.image_jepa.main as main

                calls, seen = [], {}

                class Recording(main.VICRegLoss):
                    def forward(self, z1, z2, _calls=calls):
                        out = super().forward(z1, z2)
                        _calls.append(
                            (
                                self,
                                z1.detach(),
                                z2.detach(),
                                {k: v.detach() for k, v in out.items()},
                            )
                        )
                        return out

                main.VICRegLoss = Recording
                train_epoch, evaluate = main.train_epoch, main.evaluate_linear_probe

                # the loop's objects bound as keyword-only defaults: each run records its own
                def recording_train_epoch(*args, _seen=seen, _train_epoch=train_epoch, **kwargs):
                    _seen["train"] = _train_epoch(*args, **kwargs)
                    return _seen["train"]

                def recording_evaluate(model, *args, _seen=seen, _evaluate=evaluate, **kwargs):
                    hook = model.register_forward_hook(
                        lambda m, i, o: _seen.setdefault("rows", []).append(o[0].shape)
                    )
                    try:
                        _seen["val"] = _evaluate(model, *args, **kwargs)
                    finally:
                        hook.remove()
                    return _seen["val"]

                main.train_epoch, main.evaluate_linear_probe = (
                    recording_train_epoch,
                    recording_evaluate,
                )
                main.run(
                    fname="examples/image_jepa/cfgs/default.yaml",
                    folder=tempfile.mkdtemp(),
                    **{
                        "meta.device": "cpu",
                        "data.batch_size": 16,
                        "data.num_workers": 0,
                        "optim.epochs": 1,
                        "logging.log_wandb": False,
                        "logging.tqdm_silent": True,
                        "training.use_amp": False,
                        "model.proj_hidden_dim": 256,
                        "model.proj_output_dim": 256,
                    },
                )
                row["build"] = True
                loss_obj, z1, z2, out = calls[0]
                terms = loss_obj.terms
                q1, q2 = terms.project(z1)[1], terms.project(z2)[1]
                unif = float(out.get("uniformity_loss", torch.zeros(())))
            theirs = _upstream_on_circles(
                upstream_vicreg, terms, loss_obj.std_coeff, loss_obj.cov_coeff
            )(q1, q2)
            ours = float(out["loss"]) - terms.uniformity_coeff * unif
            rows = sum(s[0] for s in seen["rows"])
            row.update(
                loss=float(out["loss"]),
                validation=f"({rows}, {seen['rows'][0][1]}) features, probe acc "
                f"{seen['val'][0]:.1f}",
                equality=abs(ours - float(theirs["loss"])),
                note=f"uniformity {unif:.3f}" if terms.uniformity_coeff else "",
            )
        except Exception as error:
            row.update(error=f"{type(error).__name__}: {str(error)[:200]}")
        emit(**row)


def worker_eb_jepa_video(root, commit):
    import torch
    import torch.nn as nn

    sys.path.insert(0, root)
    os.chdir(root)
    data = pathlib.Path(tempfile.mkdtemp(prefix="ebjepa-mnist-"))
    rng = np.random.default_rng(0)
    # Moving MNIST's layout (T, N, H, W) uint8: moving squares
    frames = np.zeros((20, 8, 64, 64), dtype=np.uint8)
    for n in range(8):
        y, x, dy, dx = *rng.integers(0, 48, 2), *rng.choice([-3, -2, 2, 3], 2)
        for t in range(20):
            frames[t, n, y : y + 14, x : x + 14] = 255
            y, x = (y + dy) % 50, (x + dx) % 50
    np.save(data / "mnist_test_seq.npy", frames)
    os.environ["EBJEPA_DSETS"] = str(data)
    import eb_jepa.losses

    from torus_plugins.adapters.eb_jepa import patch

    upstream_vc = eb_jepa.losses.VCLoss
    for projection, options in VIDEO_MODES:
        row = dict(
            repo="eb_jepa",
            ref=f"main@{commit} video_jepa",
            mode=_eb_mode_name(projection, options),
            build=False,
        )
        try:
            torch.manual_seed(0)
            with patch(eb_jepa.losses, geometry=projection, **options):
                for name in ("examples.video_jepa.main", "eb_jepa.datasets.moving_mnist"):
                    sys.modules.pop(name, None)
                import examples.video_jepa.main as m  # its `from eb_jepa.losses import VCLoss` now

                cfg = m.load_config("examples/video_jepa/cfgs/default.yaml", quiet=True)
                val_set = m.MovingMNISTDet(split="val")  # 16 clips of the synthetic sequences
                loader = m.DataLoader(val_set, batch_size=2, shuffle=False, num_workers=0)
                # validation_loop visualises 16 samples of its last batch: one batch of 16
                val_loader = m.DataLoader(val_set, batch_size=16, shuffle=False, num_workers=0)
                # main.py's construction, with its config's sizes
                encoder = m.ResNet5(cfg.model.dobs, cfg.model.henc, cfg.model.dstc)
                predictor = m.StateOnlyPredictor(
                    m.ResUNet(2 * cfg.model.dstc, cfg.model.hpre, cfg.model.dstc), context_length=2
                )
                projector = m.Projector(
                    f"{cfg.model.dstc}-{cfg.model.dstc * 4}-{cfg.model.dstc * 4}"
                )
                regularizer = m.VCLoss(cfg.loss.std_coeff, cfg.loss.cov_coeff, proj=projector)
                jepa = m.JEPA(encoder, encoder, predictor, regularizer, m.SquareLossSeq(projector))
                pixel_decoder = m.JEPAProbe(
                    jepa, m.ImageDecoder(cfg.model.dstc, cfg.model.dobs), nn.MSELoss()
                )
                detection_head = m.JEPAProbe(
                    jepa, m.DetHead(cfg.model.dstc, cfg.model.hpre, cfg.model.dobs), nn.BCELoss()
                )
                optimizer = m.Adam(
                    [
                        {"params": jepa.parameters(), "lr": cfg.optim.lr},
                        {"params": pixel_decoder.head.parameters(), "lr": cfg.optim.lr / 10},
                        {"params": detection_head.head.parameters(), "lr": cfg.optim.lr},
                    ]
                )
                row["build"] = True
                batch = next(iter(loader))  # main.py's training step
                x, loc_map = batch["video"], batch["digit_location"]
                optimizer.zero_grad()
                _, (jepa_loss, regl, _, regldict, pl) = jepa.unroll(
                    x,
                    actions=None,
                    nsteps=cfg.model.steps,
                    unroll_mode="parallel",
                    compute_loss=True,
                    return_all_steps=False,
                )
                total = jepa_loss + pixel_decoder(x, x) + detection_head(x, loc_map)
                total.backward()
                optimizer.step()
                val_logs = m.validation_loop(
                    val_loader, jepa, detection_head, pixel_decoder, cfg.model.steps, "cpu"
                )
                with torch.no_grad():  # the regulariser against upstream's
                    state = jepa.encoder(x)
                    torch.manual_seed(1)
                    loss, _, logs = regularizer(state)
                    samples = state.transpose(0, 1).flatten(1).transpose(0, 1)
                    terms = regularizer.terms
                    q = terms.project(projector(samples))[1]
            with torch.no_grad():
                toroidal = terms.cov == "toroidal"  # upstream has no toroidal term: the package's
                cov_coeff = 0.0 if toroidal else cfg.loss.cov_coeff
                theirs = _upstream_on_circles(upstream_vc, terms, cfg.loss.std_coeff, cov_coeff)
                upstream_loss = float(theirs(q)[0])
                if toroidal:
                    upstream_loss += cfg.loss.cov_coeff * float(terms.cov_term(q))
            ours = float(loss) - terms.uniformity_coeff * logs.get("uniformity_loss", 0.0)
            row.update(
                loss=float(jepa_loss),
                validation=f"{tuple(state.shape)} states, recon "
                f"{val_logs['val/recon_loss']:.3f}, AP_0 {val_logs['AP_0']:.2f}",
                equality=abs(ours - upstream_loss) / max(1.0, abs(upstream_loss)),
                note=f"vc {float(regl):.3f}"
                + (
                    f", uniformity {logs['uniformity_loss']:.3f}"
                    if "uniformity_loss" in logs
                    else ""
                ),
            )
        except Exception as error:
            row.update(error=f"{type(error).__name__}: {str(error)[:200]}")
        emit(**row)


WORKERS = {
    "supcon_torus": worker_supcon_torus,
    "supcon_main": worker_supcon_main,
    "protoclr": worker_protoclr,
    "eb_jepa_image": worker_eb_jepa_image,
    "eb_jepa_video": worker_eb_jepa_video,
}


# ---------------------------------------------------------------- driver


def git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def resolve_branch(repo, branch):
    for ref in (branch, f"origin/{branch}"):
        try:
            return git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}")
        except subprocess.CalledProcessError:
            continue
    return None


def export(repo, commit, into):
    """``git archive`` of ``commit`` extracted to ``into`` (the clone itself is not changed)."""
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return str(into)


def run_worker(name, root, commit, timeout=7200):
    start = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            str(pathlib.Path(__file__).resolve()),
            "--worker",
            name,
            "--root",
            root,
            "--commit",
            commit,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="disabled"),
    )
    rows = [
        json.loads(line[len(ROW) :]) for line in proc.stdout.splitlines() if line.startswith(ROW)
    ]
    if proc.returncode != 0 or not rows:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        rows.append(
            dict(
                repo=name,
                ref=commit[:12],
                mode="-",
                build=False,
                error=f"worker exited {proc.returncode}: " + " | ".join(tail),
            )
        )
    print(
        f"  {name}: {len(rows)} row(s) in {time.time() - start:.0f} s", file=sys.stderr, flush=True
    )
    return rows


def jobs(upstream, only):
    """(worker, checkout folder, commit) for every checkout present; messages for those absent."""
    todo, skipped = [], []
    supcon = upstream / "SupCon-Framework"
    branches = [
        (b, w)
        for b, w in (("torus", "supcon_torus"), ("main", "supcon_main"))
        if {"supcon", w} & only
    ]
    if branches:
        if (supcon / ".git").exists():
            for branch, worker in branches:
                commit = resolve_branch(supcon, branch)
                if commit is None:
                    skipped.append(f"SupCon-Framework: no branch {branch!r} in {supcon}")
                    continue
                folder = pathlib.Path(tempfile.mkdtemp(prefix=f"supcon-{branch}-"))
                todo.append((worker, export(supcon, commit, folder), commit[:12]))
        else:
            skipped.append(f"SupCon-Framework: no git checkout at {supcon}")
    for key, name, workers in (
        ("protoclr", "ProtoCLR", ("protoclr",)),
        ("eb_jepa", "eb_jepa", ("eb_jepa_image", "eb_jepa_video")),
    ):
        if key not in only:
            continue
        folder = upstream / name
        if not folder.is_dir():
            skipped.append(f"{name}: no checkout at {folder}")
            continue
        commit = git(folder, "rev-parse", "HEAD")[:12] if (folder / ".git").exists() else "unknown"
        todo += [(worker, str(folder), commit) for worker in workers]
    return todo, skipped


def print_table(rows):
    header = [
        "repo",
        "ref",
        "mode",
        "build",
        "train loss",
        "validation",
        "|ours - upstream|",
        "note / error",
    ]
    table = [
        [
            r["repo"],
            r["ref"],
            r["mode"],
            "ok" if r.get("build") else "no",
            fmt(r.get("loss")),
            r.get("validation", "-"),
            fmt(r.get("equality"), 2),
            r.get("error") or r.get("note") or "",
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in [header, ["-" * w for w in widths], *table]:
        print(" | ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", default=os.environ.get("UPSTREAM", ""))
    parser.add_argument("--only", default="supcon,protoclr,eb_jepa")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--commit", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        WORKERS[args.worker](args.root, args.commit)
        return 0
    upstream = pathlib.Path(args.upstream) if args.upstream else None
    if upstream is None or not upstream.is_dir():
        print(
            f"upstream-check skipped: no upstream folder (got UPSTREAM={args.upstream!r}); clone "
            f"SupCon-Framework (torus and main branches), ProtoCLR and eb_jepa into one folder"
        )
        return 0
    todo, skipped = jobs(upstream, set(args.only.split(",")))
    for message in skipped:
        print(f"skipped: {message}")
    if not todo:
        print("upstream-check skipped: none of the checkouts is present")
        return 0
    rows = []
    for worker, root, commit in todo:
        rows += run_worker(worker, root, commit)
    print_table(rows)
    print("\nEnvironment adaptations (no GPU, no network here): " + "; ".join(ADAPTATIONS.values()))
    print("Data: tiny SYNTHETIC sets in each upstream's own on-disk format.")
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
