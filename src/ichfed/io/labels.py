"""What a site's masks hold: binary hematoma masks (the paper's task, the default) or a label
map of bleed types, one code per type. A site says which in its site.json ("labels": "binary"
or "types"); without that, a mask holding a code above 1 makes it a typed site. Every model
reads "any blood" as label > 0, so a typed site trains a binary model as it is."""

from ichfed.errors import InputError

# code -> type; 0 is background. Intraparenchymal blood includes contusions.
TYPES = {1: "epidural", 2: "subdural", 3: "subarachnoid", 4: "intraparenchymal",
         5: "intraventricular"}
LABEL_SETS = ("binary", "types")


def declared_labels(info: dict, where: str) -> str | None:
    """The label set a site.json declares, if any."""
    value = info.get("labels")
    if value is not None and value not in LABEL_SETS:
        raise InputError(where, f"\"labels\": {value!r}; expected \"binary\" or \"types\"")
    return value


def label_set(declared: str | None, values: set[int]) -> str:
    """The site's label set: as declared, else "types" when a mask holds a code above 1."""
    if declared is not None:
        return declared
    return "types" if any(v > 1 for v in values) else "binary"


def label_problem(values: set[int], labels: str) -> str | None:
    """Why a mask's label values do not fit the site's label set, or None."""
    allowed = {0, 1} if labels == "binary" else {0, *TYPES}
    extra = sorted(values - allowed)
    if not extra:
        return None
    if labels == "binary":
        return (f"labels {extra} in a binary site; expected 0 and 1 (a map of bleed types "
                "needs \"labels\": \"types\" in site.json)")
    codes = ", ".join(f"{code} {name}" for code, name in TYPES.items())
    return f"labels {extra}; expected 0 (background) or a bleed type ({codes})"
