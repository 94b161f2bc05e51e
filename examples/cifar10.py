"""CIFAR-10 (python version) from disk for ebjepa_cifar.py. Every file is checked against torchvision's official md5
list before any pickle is opened (unpickling an untrusted file can run code); pickles from Python 2 or 3 with str or
bytes keys load, and a missing file or key is an error naming it.

Usage: ``train_x, train_y, test_x, test_y, classes = load_cifar10("/data/cifar")``
"""

import os
import pickle

import numpy as np
import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

import common


def load_cifar10(data_dir: str, skip_md5: bool = False):
    """(train_x, train_y, test_x, test_y, classes), x uint8 [N, 3, 32, 32]. Every file is checked against
    torchvision's official md5 list before it is unpickled (unless ``skip_md5``); keys may be str or bytes."""
    root = data_dir.rstrip("/")
    if os.path.basename(root) != CIFAR10.base_folder:
        root = os.path.join(root, CIFAR10.base_folder)
    files = CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    missing = [f for f, _ in files if not os.path.isfile(os.path.join(root, f))]
    if missing:
        raise common.DataDirError(f"--data-dir {data_dir!r}: missing {', '.join(missing)}; expected {root} with "
                                  f"{', '.join(f for f, _ in files)} (CIFAR-10, python version)")
    bad = [] if skip_md5 else [f for f, md5 in files if not check_integrity(os.path.join(root, f), md5)]
    if bad:
        raise common.DataDirError(f"--data-dir {data_dir!r}: {', '.join(bad)} do not match the official md5 sums; "
                                  "refusing to unpickle them (a pickle can run code). Pass --skip-md5 only for "
                                  "files you made yourself")

    def read(name, keys):
        with open(os.path.join(root, name), "rb") as f:
            d = pickle.load(f, encoding="latin1")
        d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()} if isinstance(d, dict) else {}
        if missing := [key for key in keys if key not in d]:
            raise common.DataDirError(f"--data-dir {data_dir!r}: {name} has no key {missing[0]!r}; it has keys "
                                      f"{sorted(map(str, d))} (expected {', '.join(map(repr, keys))})")
        return d

    def batches(entries):
        ds = [read(f, ("data", "labels")) for f, _ in entries]
        x = np.concatenate([np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for d in ds])
        return torch.from_numpy(x), torch.as_tensor(np.concatenate([d["labels"] for d in ds]), dtype=torch.long)

    names = read(files[-1][0], ("label_names",))["label_names"]
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    return (*batches(CIFAR10.train_list), *batches(CIFAR10.test_list), classes)
