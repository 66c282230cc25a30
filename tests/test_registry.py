import pytest

from cnnkit.errors import CnnkitError
from cnnkit.registry import Registry


def test_register_get_names_and_unknown():
    reg = Registry("widget")

    @reg.register("b", size=2)
    def b():
        return "b"

    @reg.register()
    def a():
        return "a"

    assert reg.names() == ["a", "b"]
    assert reg.get("b").builder() == "b" and reg.get("b").meta == {"size": 2}
    assert "a" in reg and "c" not in reg
    with pytest.raises(CnnkitError, match="Unknown widget 'c'. Known widgets: a, b."):
        reg.get("c")
    with pytest.raises(CnnkitError, match="already registered"):
        reg.register("a")(b)
    reg.register("a", overwrite=True)(b)
    assert reg.get("a").builder() == "b"
