"""Placeholders in a body: `{field}`, `{field|default}`, escaped braces, literal ones."""

import pytest

from schemas.template import Template


def test_fields_are_listed_once_in_order_of_use_and_lower_cased():
    template = Template("Hi {Name}, {points} points; bye {name|friend}")
    assert template.fields == ("name", "points")
    assert template.defaults == {"name": "friend"}
    assert template.render(("Asha", "12")) == "Hi Asha, 12 points; bye Asha"


@pytest.mark.parametrize(
    ("body", "rendered"),
    [
        ("No placeholders", "No placeholders"),
        ("Braces {{name}} are escaped", "Braces {name} are escaped"),
        ("Code {AB-12} and {} and { x } stay", "Code {AB-12} and {} and { x } stay"),
        ("A lone { or } stays", "A lone { or } stays"),
    ],
)
def test_bodies_without_placeholders_render_as_written_with_escapes_undone(body, rendered):
    template = Template(body)
    assert not template.personalised
    assert template.render(()) == rendered


def test_an_empty_default_is_a_default():
    template = Template("Hi{name|}!")
    assert template.defaults == {"name": ""}
    assert template.render(("",)) == "Hi!"


def test_a_placeholder_can_fill_the_whole_body():
    assert Template("{text}").render(("anything at all",)) == "anything at all"
