"""Callbacks: hooks the training loop calls, with Keras's names and defaults.

A callback sees its model as ``self.model``. ``logs`` holds the running
figures: after an epoch, ``loss`` and each metric (averaged over the epoch's
samples, as Keras does) and ``val_loss``/``val_<metric>`` when there is
validation data; after a batch, that batch's ``loss`` and metrics.
"""
import time

import numpy as np

from .errors import InputError


class Callback:
    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=f)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_begin=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_batch_begin", on_batch_begin), ("on_batch_end", on_batch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                setattr(self, name, fn)


class ProgressBar(Callback):
    """What ``fit(verbose=1)`` shows: a tqdm bar over each epoch's batches,
    closed before the epoch's line prints (so the line starts on its own);
    ``verbose=2`` prints the lines only."""

    def __init__(self, bar=True, epochs=None, steps=None):
        super().__init__()
        self.show_bar, self.epochs, self.steps, self.bar = bar, epochs, steps, None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        if self.show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=self.steps, desc=f"Epoch {epoch + 1}/{self.epochs}", leave=False, unit="batch")

    def on_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        figures = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items())
        print(f"Epoch {epoch + 1}/{self.epochs} - {time.perf_counter() - self.started:.1f}s - {figures}", flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:  # training stopped mid-epoch
            self.bar.close()
            self.bar = None


class History(Callback):
    """What ``fit`` returns: ``history[name]`` is the list of per-epoch values."""

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _direction(monitor, mode, owner):
    """+1 when a larger value is better, -1 when smaller: Keras's 'auto' reads
    the name (losses down, accuracies up)."""
    if mode not in ("auto", "min", "max"):
        raise InputError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "min":
        return -1
    if mode == "max":
        return 1
    name = str(monitor).removeprefix("val_")
    if name == "loss" or name.endswith("loss") or name.endswith("error"):
        return -1
    if "acc" in name:
        return 1
    raise InputError(f"{owner}: cannot tell whether {monitor!r} should go up or down; pass mode='max' or mode='min'")


def _monitored(logs, monitor, owner):
    value = (logs or {}).get(monitor)
    if value is None:
        raise InputError(f"{owner} monitors {monitor!r}, which the logs lack: {sorted(logs or {})}"
                         + (" (pass validation_split= or validation_data= to fit)" if monitor.startswith("val_") else ""))
    return float(value)


class ModelSaver(Callback):
    """Save the model at chosen epochs (0-based, as ``on_epoch_end`` counts).

    ``path`` may contain ``{epoch}``, e.g. ``'model_{epoch:02d}.npz'``.
    """

    def __init__(self, path, epochs):
        super().__init__()
        self.path = str(path)
        self.epochs = set(int(e) for e in epochs)

    def on_epoch_end(self, epoch, logs=None):
        if epoch in self.epochs:
            self.model.save(self.path.format(epoch=epoch))


class ModelCheckpoint(Callback):
    """Save the whole training state (weights, optimizer state, random
    generators, epochs done) so that training can resume exactly.

    Parameters
    ----------
    filepath : str or Path, may contain ``{epoch}`` (1-based count of epochs
        done) and the logs' names, e.g. ``'m-{epoch:02d}-{val_loss:.2f}.npz'``
    monitor : str, the log to watch for ``save_best_only`` (default 'val_loss')
    save_best_only : bool, save only when ``monitor`` improves
    mode : 'auto' (Keras's default: losses down, accuracies up), 'min' or 'max'
    every : int, save after every ``every``-th epoch (the engine's own; Keras
        saves every epoch)

    Each save is atomic (temporary file, flush, rename): a crash during a save
    leaves the previous checkpoint whole. Resume with::

        model = cnn.load_model(path)
        model.fit(x, y, epochs=total, initial_epoch=model.completed_epochs)
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None, every=1):
        super().__init__()
        if save_weights_only:
            raise InputError("ModelCheckpoint: save_weights_only=True is not supported (the whole state is saved)")
        if save_freq != "epoch":
            raise InputError(f"ModelCheckpoint: save_freq={save_freq!r} is not supported (only 'epoch')")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError(f"ModelCheckpoint: every must be an int >= 1, got {every!r}")
        self.path = str(filepath)
        self.every = every
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.mode = mode
        self.sign = _direction(monitor, mode, "ModelCheckpoint")
        self.best = None if initial_value_threshold is None else float(initial_value_threshold)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if self.best is not None and not self.sign * (value - self.best) > 0:
                return
            self.best = value
        elif done % self.every:
            return
        try:
            path = self.path.format(epoch=done, **(logs or {}))
        except (KeyError, IndexError, ValueError) as err:
            raise InputError(f"ModelCheckpoint: cannot fill in the file name {self.path!r} ({err})") from None
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {done}: saved the model to {path}")


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs (Keras's defaults: 'val_loss',
    patience 0, mode 'auto'). With ``restore_best_weights`` the model ends
    with the weights of its best epoch."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise InputError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(float(min_delta))
        self.verbose = verbose
        self.sign = _direction(monitor, mode, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.stopped_epoch = self.baseline, 0, 0
        self.best_weights, self.best_epoch = None, 0

    def _improves(self, value, reference):
        return reference is None or self.sign * (value - reference) > self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:  # Keras says so too
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not
    improved by ``min_delta`` for ``patience`` epochs (Keras's defaults)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if not (isinstance(factor, (int, float)) and 0 <= factor < 1):
            raise InputError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta, self.cooldown, self.min_lr = verbose, float(min_delta), int(cooldown), float(min_lr)
        self.sign = _direction(monitor, mode, "ReduceLROnPlateau")

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        from .optimizers import LearningRateSchedule

        value = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        optimizer = self.model.optimizer
        if isinstance(optimizer.learning_rate, LearningRateSchedule):
            raise InputError("ReduceLROnPlateau cannot change a learning-rate schedule; give a number")
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best, self.wait = value, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = optimizer.learning_rate
                if old > self.min_lr:
                    optimizer.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {optimizer.learning_rate}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to
    ``schedule(epoch, lr)`` (0-based epoch, the current rate)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise InputError(f"LearningRateScheduler needs a function schedule(epoch, lr), got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.schedule(epoch, float(self.model.optimizer.current_learning_rate))
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not np.isfinite(lr) or lr < 0:
            raise InputError(f"LearningRateScheduler: schedule({epoch}, ...) returned {lr!r}, not a learning rate")
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.current_learning_rate
