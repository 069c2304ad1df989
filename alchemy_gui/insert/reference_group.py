"""The Insert form's collapsible *Reference guidance* group: an IP-Adapter steers the repaint with the
subject's own photos (README, "Reference guidance").

Ticking the group's title turns guidance on (the chosen adapter) and shows its settings; unticked,
``ip_adapter`` is None and the settings fold away. The photo boxes write ``ip_photos``: None while
they show the default (the photos with subject masks, at most 4), else the ticked names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from alchemy_engine import api
from alchemy_gui.common import field_widgets as fw
from alchemy_gui.common.binding import Binding, bind

if TYPE_CHECKING:  # the state's form builds this group
    from alchemy_gui.insert.state import InsertState

DEMO_ADAPTERS = (("demo (tiny random adapter)", "demo"), ("demo-plus (tiny random Plus adapter)", "demo-plus"))
MAX_DEFAULT_PHOTOS = 4
ADAPTER_FILTER = "IP-Adapter files (*.safetensors)"


def _info(name: str) -> api.FieldInfo:
    return api.field_info(api.InsertRequest, name)


def project_photos(project: object) -> list:
    """The open project's stored photos ([] with no project, or a stand-in without photos)."""
    listing = getattr(project, "reference_photos", None)
    return list(listing()) if callable(listing) else []


def default_photos(project: object) -> list[str]:
    return [p.name for p in project_photos(project) if p.mask_path is not None][:MAX_DEFAULT_PHOTOS]


def _is_photo(box: QCheckBox) -> bool:
    """A photo's box, not the placeholder (isEnabled() is False for all while the group is unticked)."""
    return box.objectName().startswith("ip_photo_")


class ReferenceGroup(QGroupBox):
    """Adapter, strength, range, mode, photos and the crop / mask switches of the insert settings."""

    def __init__(self, state: InsertState, parent: QWidget | None = None) -> None:
        super().__init__("Reference guidance", parent)
        self.state = state
        self.settings = state.settings
        self.setCheckable(True)
        self.setToolTip(_info("ip_adapter").help)
        self.body = QWidget()
        form = QFormLayout(self.body)
        form.setContentsMargins(0, 0, 0, 0)
        self.adapter = fw.describe(QComboBox(), _info("ip_adapter"))
        for label, value in DEMO_ADAPTERS:
            self.adapter.addItem(label, value)
        # a chosen file's long name must not widen the form past its panel (the full path is its tooltip)
        self.adapter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.adapter.setMinimumContentsLength(14)
        self.choose_button = QPushButton("Choose adapter…")
        self.choose_button.setToolTip("an SDXL IP-Adapter .safetensors file (h94's ip-adapter_sdxl, "
                                      "…_vit-h, ip-adapter-plus_…, ip-adapter-plus-face_…)")
        self.scale = fw.float_spin_box(_info("ip_scale"), step=0.05)
        self.range = fw.line_edit(_info("ip_range"))
        self.mode = fw.choice_box(_info("ip_mode"))
        self.crop = fw.check_box(_info("ip_crop"))
        self.inside_mask = fw.check_box(_info("ip_inside_mask"))
        self.photos_box = QWidget()
        self.photos_layout = QVBoxLayout(self.photos_box)
        self.photos_layout.setContentsMargins(0, 0, 0, 0)
        self.photo_checks: list[QCheckBox] = []
        form.addRow("Adapter", self.adapter)
        form.addRow("", self.choose_button)  # under the list, as for the LoRAs: the panel must fit 1366 px
        for widget, name in ((self.scale, "ip_scale"), (self.range, "ip_range"), (self.mode, "ip_mode")):
            form.addRow(_info(name).label, widget)
        form.addRow(QLabel(_info("ip_photos").label))
        form.addRow(self.photos_box)
        # spanning rows: behind an empty label column these two made the form wider than its panel
        form.addRow(self.crop)
        form.addRow(self.inside_mask)
        outer = QVBoxLayout(self)
        outer.addWidget(self.body)
        self.bindings: list[Binding] = []
        self._bind()

    def _bind(self) -> None:
        settings, keep = self.settings, self.bindings.append
        keep(bind(settings, "ip_scale", self.scale))
        keep(bind(settings, "ip_range", self.range))
        keep(bind(settings, "ip_mode", self.mode))
        keep(bind(settings, "ip_crop", self.crop))
        keep(bind(settings, "ip_inside_mask", self.inside_mask))
        self.toggled.connect(self._on_toggled)
        self.adapter.currentIndexChanged.connect(self._on_adapter)
        self.choose_button.clicked.connect(self._choose_file)
        settings.ip_adapter_changed.connect(self._show_adapter)
        settings.ip_photos_changed.connect(lambda _value: self._tick_photos())
        self.state.project_changed.connect(lambda _project: self._show_photos())
        self._show_adapter(settings.ip_adapter)
        self._show_photos()

    def _on_toggled(self, on: bool) -> None:
        self.body.setVisible(on)
        self.settings.ip_adapter = self.adapter.currentData() if on else None

    def _on_adapter(self, _index: int) -> None:
        if self.isChecked():
            self.settings.ip_adapter = self.adapter.currentData()

    def _show_adapter(self, value: str | None) -> None:
        """The group follows ``ip_adapter``: ticked with it selected (a file is added to the list)."""
        self.blockSignals(True)
        self.setChecked(value is not None)
        self.blockSignals(False)
        self.body.setVisible(value is not None)
        if value is None:
            return
        index = next((i for i in range(self.adapter.count()) if self.adapter.itemData(i) == value), -1)
        if index < 0:
            self.adapter.addItem(Path(value).name, value)
            index = self.adapter.count() - 1
        self.adapter.blockSignals(True)
        self.adapter.setCurrentIndex(index)
        self.adapter.blockSignals(False)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an IP-Adapter", "", ADAPTER_FILTER)
        if path:
            self.settings.ip_adapter = path

    def _show_photos(self) -> None:
        """One box per stored photo of the open project (rebuilt when the project changes)."""
        names = [p.name for p in project_photos(getattr(self.state, "project", None))]
        for box in self.photo_checks:
            box.setParent(None)
            box.deleteLater()
        self.photo_checks = []
        for name in names:
            box = QCheckBox(name)
            box.setObjectName(f"ip_photo_{name}")
            box.toggled.connect(self._on_photo)
            self.photos_layout.addWidget(box)
            self.photo_checks.append(box)
        if not names:
            empty = QCheckBox("(the project has no photos)")
            empty.setEnabled(False)
            self.photos_layout.addWidget(empty)
            self.photo_checks.append(empty)
        self._tick_photos()

    def _tick_photos(self) -> None:
        """Ticked: the chosen photos, or the default set while ``ip_photos`` is None."""
        chosen = self.settings.ip_photos
        ticked = set(chosen.split(",")) if chosen else set(default_photos(getattr(self.state, "project", None)))
        for box in self.photo_checks:
            box.blockSignals(True)
            box.setChecked(_is_photo(box) and box.text() in ticked)
            box.blockSignals(False)

    def _on_photo(self, _on: bool) -> None:
        ticked = [b.text() for b in self.photo_checks if _is_photo(b) and b.isChecked()]
        default = default_photos(getattr(self.state, "project", None))
        self.settings.ip_photos = None if ticked == default or not ticked else ",".join(ticked)


__all__ = ["ReferenceGroup"]
