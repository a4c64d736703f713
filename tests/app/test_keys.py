"""How the CLI reads an argument that chooses a config group's option: one reading for the key
checks, the default plugins and the check of plugin names."""
from __future__ import annotations

import pytest

from facekit.app.keys import GroupChoice, group_choice, name_default_plugins


@pytest.mark.parametrize("arg, expected", [
    ("+aligner=fan", GroupChoice("aligner", ["fan"])),
    ("aligner=fan", GroupChoice("aligner", ["fan"])),
    ("++detector=yunet,s3fd", GroupChoice("detector", ["yunet", "s3fd"])),
    ("runner=ray", GroupChoice("runner", ["ray"])),
    ("~aligner", GroupChoice("aligner", None)),                         # removed
    ("+masker=choice(components,extended)", GroupChoice("masker", None)),  # a sweep's: Hydra reads it
    ("aligner.passes=1", None),                                          # an option, not a choice
    ("aligners=fan", None),
    ("output.size=128", None),
])
def test_a_group_choice_is_read_once_for_every_check(arg: str, expected: GroupChoice | None) -> None:
    assert group_choice(arg) == expected


def test_an_option_alone_names_the_default_plugin_unless_the_kind_is_chosen_or_removed() -> None:
    assert name_default_plugins(["aligner.mirror_pose=false"]) == ["aligner.mirror_pose=false", "+aligner=facemesh"]
    for chosen in ("+aligner=fan", "~aligner"):
        assert name_default_plugins([chosen, "aligner.passes=1"]) == [chosen, "aligner.passes=1"]
    assert name_default_plugins(["runner=ray", "aligner.passes=1"])[-1] == "+aligner=facemesh"
