#!/usr/bin/env python3
"""The GPU check's PyTorch side: the notebook's loop from pytorch_reference.py (its model classes,
loaders, normalisation and augmentation, imported from the copy given by --reference), run on CUDA
when there is a GPU, else on the CPU (the dry run). Called by bench/gpu-check/measure.ts with the
sizes it measured ours at; prints one JSON object on its last line.

  python3 pytorch_cuda.py --reference .gpu-check/pytorch_reference.py --data .gpu-check/cifar-10-batches-bin \
      --batch-size 64 --batch-sizes 64,128,256,512 --steps 30 --lenet-steps 100 --epochs 5

As in the reference: SGD lr 0.01, momentum 0.9, weight decay 1e-4 for AlexNet (0 for LeNet-5), the
loss read back (.item()) after every step, and the augmentation (random 4-pixel-padded crop, horizontal
flip) done per batch on the CPU, as the notebook's DataLoader did, before the batch goes to the GPU.
"""
import argparse, importlib.util, json, os, sys, time

import torch
import torch.nn as nn
import torch.optim as optim


def load_reference(path):
    spec = importlib.util.spec_from_file_location('pytorch_reference', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reference', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--device', default='auto', help='auto (cuda when available), cuda or cpu')
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--batch-sizes', default='64,128,256,512')
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--lenet-steps', type=int, default=100)
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--train-limit', type=int, default=0)
    ap.add_argument('--test-limit', type=int, default=0)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    ref = load_reference(a.reference)

    device = torch.device('cuda' if a.device == 'auto' and torch.cuda.is_available() else ('cpu' if a.device == 'auto' else a.device))
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    log = lambda line: print(f'  pytorch: {line}', file=sys.stderr, flush=True)
    log(f'torch {torch.__version__} on {device} ({name}), {torch.get_num_threads()} CPU threads')

    xtr, ytr, xte, yte = ref.load_cifar(a.data)
    if a.train_limit:
        xtr, ytr = xtr[:a.train_limit], ytr[:a.train_limit]
    if a.test_limit:
        xte, yte = xte[:a.test_limit], yte[:a.test_limit]
    xtr, xte = ref.normalise(xtr), ref.normalise(xte)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

    def setup(model):
        torch.manual_seed(a.seed)
        net = (ref.LeNet5(3, 32) if model == 'lenet5' else ref.AlexNetCIFAR(3)).to(device)
        opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4 if model == 'alexnet' else 0.0)
        crit = nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(a.seed)

        def step(xb, yb):
            xb = ref.augment(xb, g).to(device, non_blocking=True)
            opt.zero_grad()
            loss = crit(net(xb), yb.to(device, non_blocking=True))
            loss.backward()
            opt.step()
            return loss.item()

        return net, step

    def time_steps(model, batch, steps):
        """The reference's --steps mode: one warm-up step, then `steps` timed ones over consecutive slices."""
        if steps == 0:
            return None
        try:
            net, step = setup(model)
            net.train()
            step(xtr[:batch], ytr[:batch])
            sync()
            t0 = time.perf_counter()
            for i in range(steps):
                j = (i * batch) % max(1, len(xtr) - batch)
                step(xtr[j:j + batch], ytr[j:j + batch])
            sync()
            dt = time.perf_counter() - t0
            del net
            if device.type == 'cuda':
                torch.cuda.empty_cache()
            result = {'imagesPerSecond': steps * batch / dt, 'seconds': dt}
        except Exception as error:  # one batch size too big for memory must not lose the others
            result = {'error': str(error).split('\n')[0]}
        log(f'{model}, {steps} steps of {batch}: {result}')
        return result

    report = {'version': torch.__version__, 'device': device.type, 'deviceName': name, 'threads': torch.get_num_threads()}
    report['lenet'] = time_steps('lenet5', a.batch_size, a.lenet_steps)
    report['sweep'] = {str(b): time_steps('alexnet', b, a.steps) for b in dict.fromkeys(int(s) for s in a.batch_sizes.split(','))}

    # The reference's epoch loop, evaluation after the last epoch.
    net, step = setup('alexnet')
    g = torch.Generator().manual_seed(a.seed + 1)
    B = a.batch_size
    seconds = 0.0
    for e in range(a.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        sync()
        t0 = time.perf_counter()
        running = 0.0
        for i in range(0, len(xtr), B):
            idx = perm[i:i + B]
            running += step(xtr[idx], ytr[idx])
        sync()
        dt = time.perf_counter() - t0
        seconds += dt
        log(f'alexnet epoch {e + 1}: {dt:.2f} s, loss {running / max(1, -(-len(xtr) // B)):.3f}')
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xte), 1000):
            correct += (net(xte[i:i + 1000].to(device)).argmax(1).cpu() == yte[i:i + 1000]).sum().item()
    report['epochs'] = {'imagesPerSecond': len(xtr) * a.epochs / seconds, 'seconds': seconds, 'epochs': a.epochs,
                        'testAccuracy': correct / len(xte), 'images': len(xtr)}
    print(json.dumps(report))


if __name__ == '__main__':
    main()
