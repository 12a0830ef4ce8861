import math

import numpy as np
import pytest
import torch

from objectives.tables import load_table
from tuner.errors import TunerError

GERMAN = {"sep": " ", "header": "none", "target": 20, "positive": 2}
CITIES = ["berlin", "paris", "rome", "oslo"]


def write_table(folder, text, name="table.csv"):
    path = folder / name
    path.write_text(text)
    return path


def applicants_csv(n_rows=40, missing_age=(), missing_city=()):
    """Return a CSV with a header: age (numeric), city (text), income (numeric) and label (yes for every third row)."""
    lines = ["age,city,income,label"]
    for row in range(n_rows):
        age = "" if row in missing_age else str(20 + row)
        city = "" if row in missing_city else CITIES[row % 4]
        label = "yes" if row % 3 == 0 else "no"
        lines.append(f"{age},{city},{1000 + 37 * row},{label}")
    return "\n".join(lines) + "\n"


def split_rows(data):
    return {name: np.array(rows) for name, rows in data.info["rows"].items()}


def test_german_credit_shape_and_labels(data_dir):
    data = load_table({**GERMAN, "path": str(data_dir / "german.data")})

    assert (len(data.train), len(data.val), len(data.test)) == (600, 200, 200)
    assert data.n_classes == 2
    assert data.classes == ("1", "2")
    assert data.info["positive"] == 2
    assert data.info["target"] == "20"
    # 7 numeric columns and 54 one-hot columns for the 13 categorical ones.
    assert data.n_features == 61
    assert len(data.info["features"]) == 61
    assert data.info["features"][:2] == ("numeric__1", "numeric__4")
    assert "categorical__0_A11" in data.info["features"]


def test_german_credit_strata_and_no_extras(data_dir):
    data = load_table({**GERMAN, "path": str(data_dir / "german.data")})

    # 300 of the 1000 applicants are bad (class 2, coded 1).
    assert int(data.train.y.sum()) == 180
    assert int(data.val.y.sum()) == 60
    assert int(data.test.y.sum()) == 60
    assert "class_weights" not in data.info
    assert "cost" not in data.info


def test_german_credit_weights_and_cost(data_dir):
    data = load_table({**GERMAN, "path": str(data_dir / "german.data"), "class_weights": True, "cost_fn": 5, "cost_fp": 1})

    assert data.info["class_weights"] == (600 / (2 * 420), 600 / (2 * 180))
    assert data.info["cost"] == {"fn": 5.0, "fp": 1.0}


def test_german_credit_fingerprint(data_dir):
    settings = {**GERMAN, "path": str(data_dir / "german.data")}
    first, second = load_table(settings), load_table(settings)
    other_seed = load_table({**settings, "split_seed": 1})
    other_positive = load_table({**settings, "positive": 1})

    assert first.fingerprint == second.fingerprint
    assert len(first.fingerprint) == 16
    assert other_seed.fingerprint != first.fingerprint
    assert other_positive.fingerprint != first.fingerprint
    assert torch.equal(first.test.x, second.test.x)


def test_fingerprint_follows_file_bytes(tmp_path):
    path = write_table(tmp_path, applicants_csv())
    before = load_table({"path": str(path), "target": "label"})
    path.write_text(applicants_csv().replace("1037", "1038"))
    after = load_table({"path": str(path), "target": "label"})

    assert before.fingerprint != after.fingerprint


def test_header_and_string_labels(tmp_path):
    path = write_table(tmp_path, applicants_csv())
    data = load_table({"path": str(path), "target": "label"})

    assert data.name == "table"
    # 14 of 40 rows are "yes", the minority, so "yes" is the positive class by default.
    assert data.classes == ("no", "yes")
    assert data.info["positive"] == "yes"
    assert int(data.train.y.sum() + data.val.y.sum() + data.test.y.sum()) == 14
    assert data.info["features"] == (
        "numeric__age", "numeric__income",
        "categorical__city_berlin", "categorical__city_oslo", "categorical__city_paris", "categorical__city_rome",
    )


def test_positive_given_as_majority(tmp_path):
    path = write_table(tmp_path, applicants_csv())
    data = load_table({"path": str(path), "target": "label", "positive": "no"})

    assert data.classes == ("yes", "no")
    assert int(data.train.y.sum() + data.val.y.sum() + data.test.y.sum()) == 26


def test_numeric_positive_matches_text(tmp_path):
    text = "x,y\n" + "".join(f"{row},{1 + row % 2}\n" for row in range(20))
    path = write_table(tmp_path, text)
    data = load_table({"path": str(path), "target": "y", "positive": "1"})

    assert data.info["positive"] == 1
    assert data.classes == ("2", "1")


def test_positive_on_tie_is_later_label(tmp_path):
    text = "x,y\n" + "".join(f"{row},{'ab'[row % 2]}\n" for row in range(20))
    data = load_table({"path": str(write_table(tmp_path, text)), "target": "y"})

    assert data.info["positive"] == "b"


def test_multiclass_codes_sorted_labels(tmp_path):
    text = "x,kind\n" + "".join(f"{row},{['cat', 'ant', 'bee'][row % 3]}\n" for row in range(30))
    data = load_table({"path": str(write_table(tmp_path, text)), "target": "kind"})

    assert data.n_classes == 3
    assert data.classes == ("ant", "bee", "cat")
    assert data.info["positive"] is None
    assert sorted(torch.cat([data.train.y, data.val.y, data.test.y]).tolist()) == [0] * 10 + [1] * 10 + [2] * 10


def test_no_header_target_by_index(tmp_path):
    text = "".join(f"{row % 2},{row},{'ab'[row % 2]}\n" for row in range(20))
    data = load_table({"path": str(write_table(tmp_path, text)), "header": "none", "target": 0, "positive": 1})

    assert data.info["target"] == "0"
    assert data.info["features"] == ("numeric__1", "categorical__2_a", "categorical__2_b")


def test_categorical_setting_one_hot_encodes_numbers(tmp_path):
    text = "grade,y\n" + "".join(f"{row % 3},{row % 2}\n" for row in range(30))
    data = load_table({"path": str(write_table(tmp_path, text)), "target": "y", "categorical": ["grade"]})

    assert data.info["features"] == ("categorical__grade_0", "categorical__grade_1", "categorical__grade_2")
    assert set(data.train.x.flatten().tolist()) == {0.0, 1.0}


def test_semicolon_separator(tmp_path):
    path = write_table(tmp_path, applicants_csv().replace(",", ";"))
    data = load_table({"path": str(path), "target": "label", "sep": ";"})

    assert data.n_features == 6


def test_missing_values_are_imputed(tmp_path):
    path = write_table(tmp_path, applicants_csv(missing_age=range(0, 40, 5), missing_city=range(1, 40, 7)))
    data = load_table({"path": str(path), "target": "label"})

    for split in (data.train, data.val, data.test):
        assert torch.isfinite(split.x).all()
    # Each row has exactly one city after imputing the most frequent one.
    for split in (data.train, data.val, data.test):
        assert torch.equal(split.x[:, 2:].sum(dim=1), torch.ones(len(split)))


def test_scaling_and_imputation_use_train_rows_only(tmp_path):
    missing = set(range(0, 40, 4))
    path = write_table(tmp_path, applicants_csv(missing_age=missing))
    data = load_table({"path": str(path), "target": "label"})
    rows = split_rows(data)
    ages = np.array([math.nan if row in missing else 20.0 + row for row in range(40)])

    train_ages = ages[rows["train"]]
    median = np.nanmedian(train_ages)
    imputed = np.where(np.isnan(ages), median, ages)
    mean, std = imputed[rows["train"]].mean(), imputed[rows["train"]].std()
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        expected = torch.tensor((imputed[rows[name]] - mean) / std, dtype=torch.float32)
        assert torch.allclose(split.x[:, 0], expected, atol=1e-6), name
    # The statistics of all rows differ, so the check above can tell them apart.
    assert not math.isclose(np.nanmedian(ages), median)


def test_categories_come_from_train_rows_only(tmp_path):
    # Rows 30 to 39 each have a city of their own, so some of those cities are missing from the train split.
    cities = [CITIES[row % 2] for row in range(30)] + [f"town{row}" for row in range(30, 40)]
    lines = ["city,y"] + [f"{city},{row % 2}" for row, city in enumerate(cities)]
    data = load_table({"path": str(write_table(tmp_path, "\n".join(lines) + "\n")), "target": "y"})
    rows = split_rows(data)

    train_cities = sorted({cities[row] for row in rows["train"]})
    assert data.info["features"] == tuple(f"categorical__city_{city}" for city in train_cities)
    unseen = [row for row in range(30, 40) if row not in rows["train"]]
    assert unseen
    for row in unseen:
        split = "val" if row in rows["val"] else "test"
        position = rows[split].tolist().index(row)
        assert getattr(data, split).x[position].sum().item() == 0.0


def test_splits_are_disjoint_and_cover_rows(tmp_path):
    data = load_table({"path": str(write_table(tmp_path, applicants_csv())), "target": "label"})
    rows = split_rows(data)

    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(40))
    assert (len(rows["train"]), len(rows["val"]), len(rows["test"])) == (24, 8, 8)


TWO_CLASSES = "x,y\n" + "".join(f"{row},{'ab'[row % 2]}\n" for row in range(20))
THREE_CLASSES = "x,y\n" + "".join(f"{row},{'abc'[row % 3]}\n" for row in range(30))


@pytest.mark.parametrize("text, settings, message", [
    (
        "a,b\n1,2\n3,4,5\n", {"target": "b"},
        "data: cannot parse '{path}' with sep ',' and header infer: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3. "
        "Check that it is a delimited text table, and set data.sep to its field separator, such as ',', ';', '\\t' or ' '.",
    ),
    (
        "", {"target": "b"},
        "data: cannot parse '{path}' with sep ',' and header infer: No columns to parse from file. "
        "Check that it is a delimited text table, and set data.sep to its field separator, such as ',', ';', '\\t' or ' '.",
    ),
    ("a,b\n", {"target": "b"}, "data: '{path}' has no data rows. Give a file with a row per example."),
    (
        TWO_CLASSES, {"target": "label"},
        "data.target: column 'label' not found in '{path}'. Columns: x, y. Set data.target to one of them.",
    ),
    (
        applicants_csv(), {"target": "labels"},
        "data.target: column 'labels' not found in '{path}'. Did you mean 'label'? Columns: age, city, income, label. "
        "Set data.target to one of them.",
    ),
    (
        TWO_CLASSES, {"target": "y", "sep": ";"},
        "data.target: column 'y' not found in '{path}'. Columns: x,y. Set data.target to one of them. "
        "With sep ';' the file parsed into one column, so check data.sep.",
    ),
    (
        TWO_CLASSES, {"target": 2, "header": "none"},
        "data.target: column index 2 is out of range; '{path}' has 2 columns (indexes 0 to 1). Give an index in that range.",
    ),
    (
        TWO_CLASSES, {"target": 1, "header": "none", "sep": ";"},
        "data.target: column index 1 is out of range; '{path}' has 1 columns (indexes 0 to 0). Give an index in that range. "
        "With sep ';' the file parsed into one column, so check data.sep.",
    ),
    (
        TWO_CLASSES, {"target": -1, "header": "none"},
        "data.target: column index -1 is out of range; '{path}' has 2 columns (indexes 0 to 1). Give an index in that range.",
    ),
    (
        "x,y\n" + "".join(f"{row},a\n" for row in range(20)), {"target": "y"},
        "data.target: column 'y' has only one class (a); a classifier needs at least two. Check data.target.",
    ),
    (
        TWO_CLASSES, {"target": "y", "positive": "c"},
        "data.positive: 'c' is not a label of column 'y'. Labels: a, b. Set data.positive to one of them.",
    ),
    (
        "x,y\n" + "".join(f"{row},{1 + row % 2}\n" for row in range(20)), {"target": "y", "positive": 3},
        "data.positive: 3 is not a label of column 'y'. Labels: 1, 2. Set data.positive to one of them.",
    ),
    (
        "x,y\n" + "".join(f"{row},{'ab'[row < 4]}\n" for row in range(20)), {"target": "y"},
        "data: too few rows for the split: class 'b' has 4 rows, but val_fraction 0.2 and test_fraction 0.2 "
        "need at least 5 rows of each class. Add rows, or change data.val_fraction and data.test_fraction.",
    ),
    (
        "x,y\n" + "".join(f"{row},{'ab'[row % 2]}\n" for row in range(8)), {"target": "y", "val_fraction": 0.3, "test_fraction": 0.45},
        "data: too few rows for the split: 8 rows with val_fraction 0.3 and test_fraction 0.45 (The train_size = 1 should be "
        "greater or equal to the number of classes = 2). Add rows, or change data.val_fraction and data.test_fraction.",
    ),
    (
        "x,y\n1,a\n2,\n3,b\n", {"target": "y"},
        "data.target: column 'y' has no label in 1 of 3 rows (0-based data rows 1). Fill in or drop those rows.",
    ),
    (
        THREE_CLASSES, {"target": "y", "positive": "a"},
        "data.positive: only for a target with two classes; column 'y' has 3 (a, b, c). Drop data.positive.",
    ),
    (
        THREE_CLASSES, {"target": "y", "cost_fn": 5, "cost_fp": 1},
        "data.cost_fn, data.cost_fp: only for a target with two classes; column 'y' has 3 (a, b, c). Drop both.",
    ),
    (
        TWO_CLASSES, {"target": "y", "categorical": ["w"]},
        "data.categorical: column 'w' not found. Columns: x. List only these.",
    ),
    (
        TWO_CLASSES, {"target": "y", "categorical": ["y"]},
        "data.categorical: 'y' is the target column. Remove it from data.categorical.",
    ),
    (
        TWO_CLASSES, {"target": "y", "header": "none"},
        "data.target: must be a 0-based column index when data.header is none; got 'y'. Give an index, or set data.header to infer.",
    ),
])
def test_data_errors(tmp_path, text, settings, message):
    path = write_table(tmp_path, text)

    with pytest.raises(TunerError) as caught:
        load_table({"path": str(path), **settings})
    assert str(caught.value) == message.format(path=path)


@pytest.mark.parametrize("settings, message", [
    ({}, "data.target: must name the label column, or give its 0-based index when data.header is none; got None."),
    ({"target": "y", "sep": ""}, "data.sep: must be a non-empty string, the field separator; got ''. Use one of ',', ';', '\\t' or ' '."),
    ({"target": "y", "header": "yes"}, "data.header: must be infer (the first row names the columns) or none; got 'yes'."),
    ({"target": "y", "categorical": "x"}, "data.categorical: must be a list of column names or indexes; got 'x'."),
    ({"target": "y", "class_weights": "yes"}, "data.class_weights: must be true or false; got 'yes'."),
    ({"target": "y", "cost_fn": 5}, "data.cost_fp: missing. Set data.cost_fn (a false negative) and data.cost_fp (a false positive) together."),
    ({"target": "y", "cost_fn": -1, "cost_fp": 1}, "data.cost_fn: must be a number >= 0, the cost of one misclassified row; got -1."),
    ({"target": "y", "cost_fn": 0, "cost_fp": 0}, "data.cost_fn, data.cost_fp: must not both be 0; got 0 and 0. Give the cost of at least one kind of error."),
])
def test_setting_errors(tmp_path, settings, message):
    path = write_table(tmp_path, TWO_CLASSES)

    with pytest.raises(TunerError) as caught:
        load_table({"path": str(path), **settings})
    assert str(caught.value) == message


def test_missing_file_error(tmp_path):
    path = tmp_path / "nope.csv"

    with pytest.raises(TunerError) as caught:
        load_table({"path": str(path), "target": "y"})
    assert str(caught.value) == f"data.path: '{path}' not found. Give an existing file or folder."


def test_folder_instead_of_file_error(tmp_path):
    with pytest.raises(TunerError) as caught:
        load_table({"path": str(tmp_path), "target": "y"})
    assert str(caught.value) == f"data: cannot read '{tmp_path}' (Is a directory). Give a readable file in data.path."
