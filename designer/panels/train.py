"""The Train panel: dataset (generated or imported) with a preview, split, hyperparameters,
device, the smoke test, Start / Pause / Resume / Stop and a progress bar.

Its fields show and edit the model's own settings (session.settings): Open, New and a template
fill them from the model, and each change is written back at once."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.data import GENERATED, VAL_PERCENT, unmixed_classes
from engine.optim import DEFAULTS, OPTIMIZERS, SCHEDULES
from engine.session import structure_key

from ..run_watch import epoch_text
from .common import LEVEL_COLOURS, MUTED, status_label
from .preview import SamplePreview

IMPORT_FILTER = "Datasets (*.npz *.h5 *.hdf5 *.csv *idx3* *.gz);;All files (*)"


def shape_text(shape) -> str:
    return "x".join(str(v) for v in shape)


def duration_text(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _effective(settings) -> dict:
    """The settings as training reads them: a data choice's missing keys at their defaults (a
    file may hold only some; the form writes them all)."""
    choice = settings.data
    return {**settings.to_dict(), "data": {
        "source": choice.get("source") or "", "image_size": choice.get("image_size"),
        "color": choice.get("color") or "auto",
        "val_percent": float(choice.get("val_percent", VAL_PERCENT)),
        "train_range": choice.get("train_range") or "", "val_range": choice.get("val_range") or ""}}


class TrainPanel(QWidget):
    sweep_requested = Signal()   # the Sweep… button: the window opens the Sweep dialog

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self._imported: list[str] = []
        self.data_shown = None   # the DataInfo the panel shows
        self._refusal: tuple | None = None   # the last refusal shown, and the graph it saw
        self._load_timer = QTimer(self, singleShot=True, interval=250)
        self._load_timer.timeout.connect(self.load_data)

        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(self._data_group())
        column.addWidget(self._split_group())
        column.addWidget(self._hyper_group())
        column.addWidget(self._device_group())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        self._scroll_bar = scroll.verticalScrollBar()
        for field in body.findChildren(QAbstractSpinBox) + body.findChildren(QComboBox):
            field.setFocusPolicy(Qt.StrongFocus)   # a wheel turn does not give it the focus
            field.installEventFilter(self)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(scroll, 1)
        outer.addLayout(self._run_controls())

        controller.session_changed.connect(self.show_session)
        controller.data_loaded.connect(self._data_loaded)
        controller.state_changed.connect(self._state_changed)
        controller.batch_done.connect(self._batch_done)
        controller.epoch_done.connect(self._epoch_done)
        controller.finished.connect(self._finished)
        controller.diverged.connect(self._problem)
        controller.smoke_done.connect(self._smoke_done)
        controller.error.connect(self._failed)
        controller.warning.connect(self._warn)
        controller.warning_withdrawn.connect(self._withdraw_warning)
        controller.graph_changed.connect(self._show_mismatch)
        controller.graph_changed.connect(self._clear_fixed_refusal)
        controller.graph_changed.connect(self._update_start)
        controller.modified_changed.connect(self._update_start)
        controller.history_changed.connect(lambda _history: self._show_model_progress())
        self._connect_fields()
        self._state_changed(controller.state)
        if controller.session is not None:
            self.show_session()

    def eventFilter(self, watched, event) -> bool:
        """A wheel turn over a field the user has not clicked scrolls the panel: scrolling
        down the form must not change the values it passes over."""
        if event.type() == QEvent.Wheel and not watched.hasFocus():
            QCoreApplication.sendEvent(self._scroll_bar, event)
            return True
        return super().eventFilter(watched, event)

    # -- building ---------------------------------------------------------------------------
    def _data_group(self) -> QGroupBox:
        box = QGroupBox("Data")
        column = QVBoxLayout(box)
        form = QFormLayout()
        column.addLayout(form)
        self.source = QComboBox()
        for name in GENERATED:
            self.source.addItem(f"{name} (generated)", name)
        self.samples = QSpinBox(minimum=0, maximum=1_000_000, singleStep=500, value=0)
        self.samples.setSpecialValueText("default")
        self.samples.setToolTip("How many samples to generate (default: the dataset's own size)")
        import_file = QPushButton("Import file…")
        import_file.setToolTip("IDX, .npz (x, y), .h5 (x, y) or .csv with a label column")
        import_file.clicked.connect(self._import_file)
        import_folder = QPushButton("Import folder…")
        import_folder.setToolTip("A folder with one subfolder of images per class, or IDX files")
        import_folder.clicked.connect(self._import_folder)
        buttons = QHBoxLayout()
        buttons.addWidget(import_file)
        buttons.addWidget(import_folder)
        self.image_size = QLineEdit(placeholderText="as found, e.g. 32x32")
        self.image_size.setToolTip("Resize the images of a folder to HxW")
        self.color = QComboBox()
        self.color.addItems(["auto", "gray", "rgb"])
        form.addRow("Dataset", self.source)
        form.addRow("Samples", self.samples)
        form.addRow(buttons)
        form.addRow("Image size", self.image_size)
        form.addRow("Colour", self.color)
        self.data_summary = QLabel("no data loaded")
        self.data_summary.setWordWrap(True)
        self.mismatch = QLabel()
        self.mismatch.setWordWrap(True)
        self.mismatch.setStyleSheet(f"color: {LEVEL_COLOURS['bad']};")
        self.fix_model_data = QPushButton("Use the model's data")
        self.fix_model_data.clicked.connect(self._use_model_data)
        self.fix_shape = QPushButton("Set Input shape")
        self.fix_shape.clicked.connect(self._fix_shape)
        self.fix_reset = QPushButton("Reset weights to train afresh")
        self.fix_reset.clicked.connect(self.controller.reset)
        self.preview = SamplePreview()
        # below the form, not in it: a form row gives a wrapped label one line's height
        for widget in (self.data_summary, self.mismatch, self.fix_model_data, self.fix_shape,
                       self.fix_reset, self.preview):
            column.addWidget(widget)
        for widget in (self.mismatch, self.fix_model_data, self.fix_shape, self.fix_reset):
            widget.setVisible(False)   # until loaded data has a problem they fix
        return box

    def _split_group(self) -> QGroupBox:
        box = QGroupBox("Split")
        form = QFormLayout(box)
        self.val_percent = QDoubleSpinBox(minimum=0, maximum=90, value=VAL_PERCENT, suffix=" %",
                                          decimals=0)
        self.val_percent.setToolTip("The last share of the samples validates; the rest trains")
        self.train_range = QLineEdit(placeholderText="A:B (overrides the share)")
        self.val_range = QLineEdit(placeholderText="A:B")
        form.addRow("Validation", self.val_percent)
        form.addRow("Train range", self.train_range)
        form.addRow("Validation range", self.val_range)
        return box

    def _hyper_group(self) -> QGroupBox:
        box = QGroupBox("Hyperparameters")
        form = QFormLayout(box)
        self.epochs = QSpinBox(minimum=1, maximum=100_000, value=10)
        self.batch_size = QSpinBox(minimum=1, maximum=65_536, value=64)
        self.optimizer = QComboBox()
        self.optimizer.addItems(OPTIMIZERS)
        self.optimizer.setCurrentText("adam")
        self.lr = QDoubleSpinBox(minimum=1e-6, maximum=10.0, decimals=6, singleStep=1e-4,
                                 value=1e-3)
        self.schedule = QComboBox()
        self.schedule.addItems(SCHEDULES)
        self.schedule.setToolTip("step: x0.1 after each third of the epochs; cosine: down to 0")
        self.weight_decay = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=6,
                                           singleStep=1e-4)
        self.translate = QSpinBox(minimum=0, maximum=32, suffix=" px")
        self.translate.setToolTip("Augmentation: random shift up to this many cells per axis")
        self.hflip = QCheckBox("flip horizontally")
        self.brightness = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=2, singleStep=0.05)
        self.contrast = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=2, singleStep=0.05)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.early_stop = QSpinBox(minimum=0, maximum=10_000, suffix=" epochs")
        self.early_stop.setSpecialValueText("off")
        self.early_stop.setToolTip("Stop when the validation loss has not improved for this many "
                                   "epochs; the model keeps its best epoch's weights")
        self.keep_best = QCheckBox("keep the best epoch")
        self.keep_best.setToolTip("The model file keeps the weights of the epoch with the lowest "
                                  "validation loss (evaluate, predict and export use them)")
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Optimizer", self.optimizer)
        form.addRow("Learning rate", self.lr)
        form.addRow("Schedule", self.schedule)
        form.addRow("Weight decay", self.weight_decay)
        form.addRow("Shift", self.translate)
        form.addRow("", self.hflip)
        form.addRow("Brightness ±", self.brightness)
        form.addRow("Contrast ±", self.contrast)
        form.addRow("Seed", self.seed)
        form.addRow("Early stop", self.early_stop)
        form.addRow("", self.keep_best)
        return box

    def _device_group(self) -> QGroupBox:
        box = QGroupBox("Device")
        form = QFormLayout(box)
        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        self.device_note = QLabel("Looking for GPUs…")
        self.device_note.setWordWrap(True)
        self.device_note.setStyleSheet(f"color: {MUTED};")
        form.addRow("Train on", self.device)
        form.addRow(self.device_note)
        self.controller.devices_found.connect(self._devices_found)
        # once the window is up: the search takes a moment, and the CPU is there meanwhile
        QTimer.singleShot(0, self, self.controller.detect_devices)
        return box

    def _run_controls(self) -> QVBoxLayout:
        layout = QVBoxLayout()
        self.smoke_first = QCheckBox("smoke test before training")
        self.smoke_first.setChecked(True)
        self.smoke_first.setToolTip("One forward/backward on a batch and a short overfit run on "
                                    "10 samples, to catch broken networks before a long run")
        buttons = QHBoxLayout()
        self.smoke_button = QPushButton("Smoke test")
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.reset_button = QPushButton("Reset weights")
        self.sweep_button = QPushButton("Sweep…")
        self.sweep_button.setToolTip("Search settings and layer widths: many short runs on a "
                                     "local Dask cluster")
        self.sweep_button.clicked.connect(self.sweep_requested)
        self.smoke_button.clicked.connect(self.controller.run_smoke_test)
        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.controller.stop)
        self.reset_button.clicked.connect(self.controller.reset)
        # two rows: the run, then the tools (one row of six kept the dock 450 px wide)
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        tools = QHBoxLayout()
        for button in (self.smoke_button, self.reset_button, self.sweep_button):
            tools.addWidget(button)
        self.progress = QProgressBar(textVisible=True, maximum=1000)
        self.progress.setFormat("not started")
        self.progress.setToolTip("epoch · batch of the epoch · training samples per second · "
                                 "time left")
        self.status = status_label()
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.start_anyway = QPushButton("Start anyway")
        self.start_anyway.setVisible(False)
        self.start_anyway.clicked.connect(lambda: self.start(force=True))
        self.warning = status_label()
        self.warning.setStyleSheet(f"color: {LEVEL_COLOURS['warn']};")
        self.warning.setVisible(False)
        self.stop_now = QPushButton("Stop training")
        self.stop_now.setVisible(False)
        self.stop_now.clicked.connect(self.controller.stop)
        # the messages, whose number of lines varies, above the buttons: the buttons stay put
        # at the bottom of the panel (a click aimed at Pause landed elsewhere when they moved)
        layout.addWidget(self.status)
        layout.addWidget(self.start_anyway)
        layout.addWidget(self.warning)
        layout.addWidget(self.stop_now)
        layout.addWidget(self.progress)
        layout.addWidget(self.smoke_first)
        layout.addLayout(buttons)
        layout.addLayout(tools)
        return layout

    # -- the model's settings ----------------------------------------------------------------
    def _connect_fields(self) -> None:
        """Every field writes the model's settings when the user changes it."""
        for signal in (self.epochs.valueChanged, self.batch_size.valueChanged,
                       self.lr.valueChanged, self.schedule.currentTextChanged,
                       self.weight_decay.valueChanged, self.translate.valueChanged,
                       self.hflip.toggled, self.brightness.valueChanged,
                       self.contrast.valueChanged, self.seed.valueChanged,
                       self.early_stop.valueChanged, self.keep_best.toggled,
                       self.device.currentIndexChanged):
            signal.connect(self._store_settings)
        self.optimizer.currentTextChanged.connect(self._optimizer_chosen)
        for signal in (self.source.currentIndexChanged, self.samples.valueChanged,
                       self.color.currentIndexChanged, self.val_percent.valueChanged,
                       self.image_size.editingFinished, self.train_range.editingFinished,
                       self.val_range.editingFinished):
            signal.connect(self._data_changed)

    def _fields(self) -> list[QWidget]:
        return [self.source, self.samples, self.image_size, self.color, self.val_percent,
                self.train_range, self.val_range, self.epochs, self.batch_size, self.optimizer,
                self.lr, self.schedule, self.weight_decay, self.translate, self.hflip,
                self.brightness, self.contrast, self.seed, self.early_stop, self.keep_best,
                self.device]

    def show_session(self) -> None:
        """Show the current model: its settings in the fields, its data loaded, a clean run
        status (another model's progress and messages go)."""
        s = self.controller.session.settings
        for widget in self._fields():
            widget.blockSignals(True)
        try:
            self.epochs.setValue(s.epochs)
            self.batch_size.setValue(s.batch_size)
            self.optimizer.setCurrentText(s.optimizer)
            self.lr.setValue(s.lr)
            self.schedule.setCurrentText(s.schedule)
            self.weight_decay.setValue(s.weight_decay)
            aug = s.augmentation
            self.translate.setValue(int(aug.get("translate", 0)))
            self.hflip.setChecked(bool(aug.get("hflip", False)))
            self.brightness.setValue(float(aug.get("brightness", 0.0)))
            self.contrast.setValue(float(aug.get("contrast", 0.0)))
            self.seed.setValue(s.seed)
            self.early_stop.setValue(s.early_stop or 0)
            self.keep_best.setChecked(s.keep_best)
            index = self.device.findData(s.device)
            if index >= 0:
                self.device.setCurrentIndex(index)
            self._show_data_choice(s.data)
        finally:
            for widget in self._fields():
                widget.blockSignals(False)
        self._show_model_progress()
        self._say("")
        self.start_anyway.setVisible(False)
        self.warning.setVisible(False)
        self.stop_now.setVisible(False)
        self._enable_source_options()
        self._update_start()
        self.load_data()

    def _show_model_progress(self) -> None:
        """Where the opened model stands: untrained, trained so many epochs, or stopped mid-epoch
        (what Resume run goes on from)."""
        session = self.controller.session
        epochs, position = len(session.history["epoch"]), session.position
        if position.batch:
            text = f"stopped at epoch {position.epoch + 1}, batch {position.batch}"
        elif epochs:
            text = f"trained {epochs} epoch{'s' * (epochs != 1)}"
        else:
            text = "trained elsewhere" if session.trained else "not started"
        self.progress.setValue(self.progress.maximum() if epochs and not position.batch else 0)
        self.progress.setFormat(text)

    def _show_data_choice(self, choice: dict) -> None:
        data_fields = (self.source, self.samples, self.image_size, self.color, self.val_percent,
                       self.train_range, self.val_range)
        blocked = [widget.blockSignals(True) for widget in data_fields]
        try:
            self._fill_data_choice(choice)
        finally:
            for widget, was in zip(data_fields, blocked):
                widget.blockSignals(was)
        self._enable_source_options()

    def _fill_data_choice(self, choice: dict) -> None:
        source = choice.get("source") or ""
        name, _, size = source.partition(":")
        if name in GENERATED:
            self.samples.setValue(int(size) if size.isdigit() else 0)
            self.source.setCurrentIndex(self.source.findData(name))
        elif source:
            self._add_import(source)
        size = choice.get("image_size")
        self.image_size.setText(f"{size[0]}x{size[1]}" if size else "")
        self.color.setCurrentText(choice.get("color") or "auto")
        self.val_percent.setValue(float(choice.get("val_percent", VAL_PERCENT)))
        self.train_range.setText(choice.get("train_range") or "")
        self.val_range.setText(choice.get("val_range") or "")

    def _store_settings(self) -> None:
        with self._settings_edit():
            self._write_settings()

    @contextmanager
    def _settings_edit(self):
        """The user changed a field: a changed setting is a change to the model (it is saved
        in the model file), so the window marks it unsaved."""
        settings = self.controller.session.settings
        before = _effective(settings)
        yield
        if _effective(settings) != before:
            self.controller.settings_edited()
            self._clear_fixed_refusal(settings_changed=True)

    def _write_settings(self) -> None:
        s = self.controller.session.settings
        s.epochs, s.batch_size = self.epochs.value(), self.batch_size.value()
        s.optimizer, s.lr = self.optimizer.currentText(), self.lr.value()
        s.schedule, s.weight_decay = self.schedule.currentText(), self.weight_decay.value()
        s.augmentation = {"translate": self.translate.value(), "hflip": self.hflip.isChecked(),
                          "brightness": self.brightness.value(),
                          "contrast": self.contrast.value()}
        s.seed = self.seed.value()
        s.early_stop = self.early_stop.value() or None
        s.keep_best = self.keep_best.isChecked()
        s.device = self.device.currentData() or "cpu"

    def _optimizer_chosen(self, kind: str) -> None:
        self.lr.setValue(DEFAULTS[kind]["lr"])
        self._store_settings()

    def data_spec(self) -> str:
        name = self.source.currentData()
        if name in GENERATED and self.samples.value():
            return f"{name}:{self.samples.value()}"
        return name

    def _data_changed(self) -> None:
        size = self.image_size.text().lower().replace(" ", "").split("x")
        image_size = [int(size[0]), int(size[1])] if len(size) == 2 and all(
            v.isdigit() for v in size) else None
        with self._settings_edit():
            self.controller.session.settings.data = {
                "source": self.data_spec(), "image_size": image_size,
                "color": self.color.currentText(), "val_percent": self.val_percent.value(),
                "train_range": self.train_range.text(), "val_range": self.val_range.text()}
        self._enable_source_options()
        self._schedule_load()

    def set_data_spec(self, spec: str) -> None:
        """Choose a dataset by spec ("shapes:600", a path) as if picked in the form."""
        name, _, size = spec.partition(":")
        if name in GENERATED:
            self.samples.blockSignals(True)
            self.samples.setValue(int(size) if size.isdigit() else 0)
            self.samples.blockSignals(False)
            self.source.setCurrentIndex(self.source.findData(name))
        else:
            self._add_import(spec)
        self._data_changed()
        self.load_data()

    # -- actions ----------------------------------------------------------------------------
    def start(self, force: bool = False) -> None:
        if not self._may_set_run_aside():
            return
        self.start_anyway.setVisible(False)
        self.warning.setVisible(False)
        self._say("")
        self.controller.start(smoke_test=self.smoke_first.isChecked() and not force)

    def _may_set_run_aside(self) -> bool:
        """Whether to start when an edit changed arrays of a trained model: that start trains
        the changed layers afresh and sets the run aside (an undo brings it back), so ask."""
        session, graph = self.controller.session, self.controller.graph
        if session is None or graph is None or not session.trained or session.keeps_run(graph):
            return True

        def trained(epochs: int) -> str:
            return f"{epochs} trained epoch{'s' * (epochs != 1)}" if epochs else "trained weights"

        now, earlier = len(session.history["epoch"]), session.set_aside_epochs
        dropped = ("" if earlier is None else f" The run an earlier edit set aside "
                   f"({trained(earlier)}) is then dropped: only one run is kept aside.")
        answer = QMessageBox.question(
            self, "Train the edited network?",
            f"The network was edited since it was trained, so the layers whose weights no "
            f"longer fit start afresh and the run so far ({trained(now)}) is set aside; undo "
            f"the edit to go on training it instead.{dropped} Train the edited network?",
            QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes

    def load_data(self) -> None:
        self._load_timer.stop()
        self.controller.load_data()

    def _schedule_load(self) -> None:
        if not self.controller.busy:
            self._load_timer.start()

    def _enable_source_options(self) -> None:
        generated = self.source.currentData() in GENERATED
        self.samples.setEnabled(generated)
        self.image_size.setEnabled(not generated)
        self.color.setEnabled(not generated)

    def _add_import(self, path: str) -> None:
        index = self.source.findData(path)
        if index < 0:
            self.source.addItem(Path(path).name or path, path)
            index = self.source.count() - 1
            self.source.setItemData(index, path, Qt.ToolTipRole)
        self.source.setCurrentIndex(index)

    def _import_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import dataset", "", IMPORT_FILTER)
        if path:
            self._add_import(path)

    def _import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import image folder")
        if path:
            self._add_import(path)

    def _toggle_pause(self) -> None:
        if self.controller.state == "paused":
            self.controller.resume()
        else:
            self.controller.pause()

    def _fix_shape(self) -> None:
        info = self.controller.data
        if info is not None:
            self.controller.request_input_shape(list(info.dataset.input_shape))

    def _use_model_data(self) -> None:
        self.controller.use_model_data()
        self._show_data_choice(self.controller.session.settings.data)

    def _warn(self, message: str) -> None:
        self.warning.setText(message)
        self.warning.setVisible(True)
        self.stop_now.setVisible(self.controller.busy)

    def _withdraw_warning(self, _why: str) -> None:
        self.warning.setVisible(False)
        self.stop_now.setVisible(False)

    def _update_start(self) -> None:
        session, graph = self.controller.session, self.controller.graph
        resume = session is not None and session.interrupted and (
            graph is None or session.keeps_run(graph))
        self.start_button.setText("Resume run" if resume else "Start")
        self.start_button.setToolTip(
            f"Finish the stopped run (epoch {session.position.epoch + 1} of "
            f"{session.optimizer.schedule.epochs})" if resume else
            "Train the epochs set above, from where the model is")

    def _problem(self, message: str) -> None:
        self._say(message, "bad")

    def _failed(self, message: str) -> None:
        """A start or load the controller refused; the message goes once an edit makes the graph
        valid (a refusal for the data stays while the graph is unchanged)."""
        self._problem(message)
        graph = self.controller.graph
        self._refusal = (message, structure_key(graph) if graph is not None else None)

    def _clear_fixed_refusal(self, settings_changed: bool = False) -> None:
        """Take a refusal down once what it refused may have changed while the graph is valid:
        the network, or (a refusal of the data or of the memory a batch needs) a setting."""
        graph = self.controller.graph
        if self._refusal is None or graph is None:
            return
        message, key = self._refusal
        if self.status.text() != message:
            self._refusal = None
        elif (settings_changed or structure_key(graph) != key) and graph.analyze().ok:
            self._say("")
            self._refusal = None

    def _say(self, text: str, level: str | None = None) -> None:
        self.status.setText(text)
        style = f"color: {LEVEL_COLOURS[level]};" if level else ""
        if style != self.status.styleSheet():
            self.status.setStyleSheet(style)

    # -- following the controller -----------------------------------------------------------
    def _devices_found(self, devices: list, note: str) -> None:
        session = self.controller.session
        chosen = session.settings.device if session is not None else self.device.currentData()
        blocked = self.device.blockSignals(True)   # the machine's devices, not the user's choice
        self.device.clear()
        for device_id, label in devices:
            self.device.addItem(label, device_id)
        found = self.device.findData(chosen)
        self.device.setCurrentIndex(max(0, found))
        self.device.blockSignals(blocked)
        if session is not None and found < 0:   # a device this machine lacks: the CPU
            session.settings.device = self.device.currentData() or "cpu"
        self.device_note.setText(note)
        self.device_note.setVisible(bool(note))

    def _show_mismatch(self) -> None:
        info = self.controller.data
        problem = info.problem if info is not None else None
        self.mismatch.setText(problem.message if problem else "")
        self.mismatch.setVisible(problem is not None)
        fixes = problem.fixes if problem else ()
        if "model_data" in fixes:
            source = (self.controller.session.data_spec or {}).get("source", "")
            self.fix_model_data.setText(f"Use the model's data ({Path(source).name or source})")
        if "input_shape" in fixes:
            self.fix_shape.setText(f"Set Input shape to {shape_text(info.dataset.input_shape)}")
        for fix, button in (("model_data", self.fix_model_data), ("input_shape", self.fix_shape),
                            ("reset", self.fix_reset)):
            button.setVisible(fix in fixes)

    def _data_loaded(self, info) -> None:
        self.data_shown = info
        ds = info.dataset
        name = ds.source.partition(":")[0]
        chosen, _, size = (self.controller.session.settings.data.get("source") or "").partition(":")
        samples = int(size) if size.isdigit() else 0
        if name in GENERATED and name == chosen and (self.source.currentData() != name
                                                     or self.samples.value() != samples):
            # the built-in dataset the controller chose for the Input: name it and its size in
            # the form (a graph without a data choice kept the last model's size showing)
            blocked = [widget.blockSignals(True) for widget in (self.source, self.samples)]
            self.source.setCurrentIndex(self.source.findData(name))
            self.samples.setValue(samples)
            for widget, was in zip((self.source, self.samples), blocked, strict=True):
                widget.blockSignals(was)
            if not self.controller.busy:
                self._enable_source_options()
        counts = ", ".join(f"{name} {t}/{v}" for name, t, v in
                           zip(ds.class_names, info.train_counts, info.val_counts, strict=True))
        lines = [f"<b>{len(ds)}</b> samples of shape <b>{shape_text(ds.input_shape)}</b>, "
                 f"{ds.num_classes} classes; train {info.train_range[0]}:{info.train_range[1]}, "
                 f"validation {info.val_range[0]}:{info.val_range[1]}",
                 f"<span style='color:{MUTED}'>per class (train/validation): {counts}</span>"]
        missing = [ds.class_names[k] for k in unmixed_classes(ds.y, info.train_range,
                                                              info.val_range, ds.num_classes)]
        if missing:
            lines.append(f"<span style='color:{LEVEL_COLOURS['warn']}'>missing from one side of "
                         f"the split: {', '.join(missing)} (sorted data? set the ranges)</span>")
        outputs = self.controller.output_classes()
        if outputs is not None and outputs > ds.num_classes:
            lines.append(f"<span style='color:{LEVEL_COLOURS['warn']}'>the Output tells "
                         f"{outputs} classes apart and the data has {ds.num_classes}: outputs "
                         f"{ds.num_classes}-{outputs - 1} are never right (it trains; set the "
                         f"last layer's units to {ds.num_classes} to match)</span>")
        self.data_summary.setText("<br>".join(lines))
        train = slice(*info.train_range)
        self.preview.show_samples(ds.x[train], ds.y[train], ds.class_names)
        self._show_mismatch()

    def _state_changed(self, state: str) -> None:
        busy = state in ("smoke", "training", "paused", "stopping")
        for widget in (self.source, self.samples, self.image_size, self.color, self.val_percent,
                       self.train_range, self.val_range, self.device, self.smoke_button,
                       self.start_button, self.reset_button, self.start_anyway,
                       self.fix_model_data, self.fix_shape, self.fix_reset, self.epochs,
                       self.batch_size, self.optimizer, self.lr, self.schedule,
                       self.weight_decay, self.translate, self.hflip, self.brightness,
                       self.contrast, self.seed, self.early_stop, self.keep_best):
            # Start queues behind a loading dataset; the rest waits for it
            widget.setEnabled(not busy and (state != "loading" or widget is self.start_button))
        if not busy:
            self._enable_source_options()
        self.pause_button.setEnabled(state in ("training", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(busy and state != "stopping")
        self.stop_now.setVisible(busy and self.warning.isVisible() and state != "stopping")
        if state == "smoke":
            self._say("running the smoke test…")
        elif state == "paused":
            self.progress.setFormat(self.progress.format().replace(" (paused)", "") + " (paused)")
        elif state == "loading":
            self._say("loading data…")
        elif state == "idle" and self.status.text() == "loading data…":
            self._say("")

    def _batch_done(self, payload: dict) -> None:
        if "epoch" not in payload:
            return
        self.progress.setValue(int(1000 * payload["fraction"]))
        # short enough for the dock's default width (with " (paused)" after it)
        self.progress.setFormat(
            f"epoch {payload['epoch']}/{payload['epochs']} · {payload['batch']}/"
            f"{payload['batches']} · {payload['samples_per_sec']:,.0f}/s · "
            f"{duration_text(payload['eta'])} left")
        if self.status.text().startswith("running the smoke test"):
            self._say("training…")

    def _epoch_done(self, row: dict) -> None:
        self._say(epoch_text(row))

    def _smoke_done(self, report) -> None:
        if report.ok:
            self._say(report.summary(), "ok")
        else:
            self._say(report.summary().replace("\n", "<br>"), "bad")
            self.start_anyway.setVisible(True)

    def _finished(self, reason: str) -> None:
        self._update_start()
        if reason == "early stop":
            self._say(self.status.text() + "<br>" + self.warning.text(), "ok")
            self.warning.setVisible(False)
        if reason == "completed":
            self.progress.setValue(self.progress.maximum())
            self._say(self.status.text() + "<br>training complete", "ok")
        elif reason == "stopped":
            self._say(self.status.text() + "<br>stopped; the weights reached are kept")
        elif reason == "failed" and not self.status.text():
            self._say("training failed", "bad")
        if reason in ("completed", "stopped", "early stop"):   # not the run's rate and time left
            self._show_model_progress()
        else:
            self.progress.setFormat(self.progress.format().replace(" (paused)", ""))
