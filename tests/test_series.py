import numpy as np
import pandas as pd
import pytest

from objectives.series import (
    CALENDAR_FEATURES,
    calendar_features,
    load_series,
    read_series,
    seasonal_lag,
    window_ends,
)
from tuner.errors import TunerError

START = pd.Timestamp("2024-01-01 00:00:00")
REAL = {"time": "Datetime", "target": "PJME_MW"}
# The 30 hours absent from PJME_hourly.csv: the spring daylight-saving hours, the
# autumn ones of 2002 to 2013, and 2010-12-10 00:00.
REAL_MISSING = [
    "2002-04-07 03:00:00", "2002-10-27 02:00:00", "2003-04-06 03:00:00", "2003-10-26 02:00:00",
    "2004-04-04 03:00:00", "2004-10-31 02:00:00", "2005-04-03 03:00:00", "2005-10-30 02:00:00",
    "2006-04-02 03:00:00", "2006-10-29 02:00:00", "2007-03-11 03:00:00", "2007-11-04 02:00:00",
    "2008-03-09 03:00:00", "2008-11-02 02:00:00", "2009-03-08 03:00:00", "2009-11-01 02:00:00",
    "2010-03-14 03:00:00", "2010-11-07 02:00:00", "2010-12-10 00:00:00", "2011-03-13 03:00:00",
    "2011-11-06 02:00:00", "2012-03-11 03:00:00", "2012-11-04 02:00:00", "2013-03-10 03:00:00",
    "2013-11-03 02:00:00", "2014-03-09 03:00:00", "2015-03-08 03:00:00", "2016-03-13 03:00:00",
    "2017-03-12 03:00:00", "2018-03-11 03:00:00",
]
# Each duplicated timestamp of PJME_hourly.csv with its two values, in file order.
REAL_DUPLICATES = {
    "2014-11-02 02:00:00": (22935.0, 23755.0),
    "2015-11-01 02:00:00": (21567.0, 21171.0),
    "2016-11-06 02:00:00": (20795.0, 21692.0),
    "2017-11-05 02:00:00": (21236.0, 20666.0),
}


def write_series(folder, values, hours=None, name="load.csv", order=None):
    """Write `values` at START + `hours` (default 0, 1, ...) as columns time,load; `order` permutes the rows."""
    hours = list(range(len(values))) if hours is None else list(hours)
    rows = [f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},{v}" for h, v in zip(hours, values)]
    if order is not None:
        rows = [rows[i] for i in order]
    path = folder / name
    path.write_text("time,load\n" + "\n".join(rows) + "\n")
    return path


def settings_for(path, **options):
    return {"path": str(path), "time": "time", "target": "load", **options}


def target_hours(split):
    return list((pd.DatetimeIndex(split.times) - START) // pd.Timedelta(hours=1))


@pytest.fixture(scope="module")
def pjme(data_dir):
    return load_series({"path": str(data_dir / "PJME_hourly.csv"), **REAL})


def test_real_file_sorted_and_deduplicated(data_dir):
    times, values, dropped = read_series(data_dir / "PJME_hourly.csv", {**REAL, "time_format": None, "duplicates": "mean"})

    assert len(times) == 145362
    assert dropped == 4
    assert times.is_monotonic_increasing
    assert times.is_unique
    assert str(times[0]) == "2002-01-01 01:00:00"
    assert str(times[-1]) == "2018-08-03 00:00:00"
    for time, pair in REAL_DUPLICATES.items():
        assert values[times.get_loc(pd.Timestamp(time))] == sum(pair) / 2


@pytest.mark.parametrize("rule, position", [("first", 0), ("last", 1)])
def test_real_file_duplicates_first_last(data_dir, rule, position):
    times, values, _ = read_series(data_dir / "PJME_hourly.csv", {**REAL, "time_format": None, "duplicates": rule})

    for time, pair in REAL_DUPLICATES.items():
        assert values[times.get_loc(pd.Timestamp(time))] == pair[position]


def test_real_file_counts(pjme):
    assert pjme.info["duplicates"] == 4
    assert pjme.info["missing_hours"] == 30
    assert pjme.info["n_hours"] == 145362
    assert [len(pjme.train), len(pjme.val), len(pjme.test)] == [96978, 21040, 21041]
    assert pjme.n_features == 168 + len(CALENDAR_FEATURES)


def test_real_file_windows_skip_missing_hours(pjme):
    missing = pd.DatetimeIndex(REAL_MISSING).to_numpy()
    for split in (pjme.train, pjme.val, pjme.test):
        first_input = split.times - np.timedelta64(24 + 168 - 1, "h")
        # A window spans a missing hour when that hour lies between its first input hour and its target hour.
        windows_before = np.searchsorted(first_input, missing, side="right")
        windows_after = np.searchsorted(split.times, missing, side="left")
        assert np.array_equal(windows_before, windows_after)


def test_real_file_split_boundaries(pjme):
    first_input = {name: getattr(pjme, name).times[0] - np.timedelta64(24 + 168 - 1, "h") for name in ("val", "test")}

    for split in (pjme.train, pjme.val, pjme.test):
        assert np.all(np.diff(split.times) > np.timedelta64(0, "h"))
    assert pjme.train.times[-1] < first_input["val"]
    assert pjme.val.times[-1] < first_input["test"]
    assert str(pjme.train.times[0]) == "2002-01-09T00:00:00.000000"
    assert str(pjme.val.times[0]) == "2013-08-19T17:00:00.000000"
    assert str(pjme.test.times[0]) == "2016-02-14T08:00:00.000000"
    assert str(pjme.test.times[-1]) == "2018-08-03T00:00:00.000000"


def test_unsorted_rows_give_sorted_windows(tmp_path):
    values = [100 + (h * 37) % 11 for h in range(60)]
    in_order = load_series(settings_for(write_series(tmp_path, values, name="a.csv"), lookback=3, horizon=2))
    shuffled = load_series(settings_for(write_series(tmp_path, values, name="b.csv", order=np.random.default_rng(0).permutation(60)), lookback=3, horizon=2))

    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(shuffled, name).times, getattr(in_order, name).times)
        assert getattr(shuffled, name).x.equal(getattr(in_order, name).x)
        assert getattr(shuffled, name).y.equal(getattr(in_order, name).y)


@pytest.mark.parametrize("rule, expected", [("mean", 15.0), ("first", 10.0), ("last", 20.0)])
def test_duplicated_timestamp_rules(tmp_path, rule, expected):
    path = write_series(tmp_path, [1.0, 10.0, 20.0, 3.0], hours=[0, 1, 1, 2])

    times, values, dropped = read_series(path, {"time": "time", "target": "load", "time_format": None, "duplicates": rule})

    assert dropped == 1
    assert list(times - START) == [pd.Timedelta(hours=h) for h in (0, 1, 2)]
    assert list(values) == [1.0, expected, 3.0]


def test_missing_hour_windows(tmp_path):
    hours = [h for h in range(60) if h != 10]
    path = write_series(tmp_path, [100.0 + h for h in hours], hours=hours)

    data = load_series(settings_for(path, lookback=3, horizon=2, val_fraction=0.25, test_fraction=0.25))

    # Hour 10 is missing, so the windows over hours 6..10 to 10..14 (targets 10 to 14) do not exist.
    # The split cuts fall at hours 30 and 45, and no window crosses them.
    assert target_hours(data.train) == [4, 5, 6, 7, 8, 9, *range(15, 30)]
    assert target_hours(data.val) == list(range(34, 45))
    assert target_hours(data.test) == list(range(49, 60))


def test_missing_hour_inputs(tmp_path):
    hours = [h for h in range(60) if h != 10]
    path = write_series(tmp_path, [100.0 + h for h in hours], hours=hours)
    data = load_series(settings_for(path, lookback=3, horizon=2, val_fraction=0.25, test_fraction=0.25))
    mean, std = data.info["mean"], data.info["std"]

    inputs = data.train.x[:, :3].double() * std + mean
    target_15 = target_hours(data.train).index(15)
    assert inputs[target_15].round().tolist() == [111.0, 112.0, 113.0]
    assert data.train.y[target_15].item() * std + mean == pytest.approx(115.0)


def test_time_format_parses_other_layout(tmp_path):
    path = tmp_path / "load.csv"
    path.write_text("time,load\n" + "\n".join(f"01.01.2024 {h:02d}h,{100 + h}" for h in range(24)) + "\n")

    times, values, _ = read_series(path, {"time": "time", "target": "load", "time_format": "%d.%m.%Y %Hh", "duplicates": "mean"})

    assert str(times[0]) == "2024-01-01 00:00:00"
    assert str(times[-1]) == "2024-01-01 23:00:00"
    assert values.tolist() == [100.0 + h for h in range(24)]


def test_utc_offsets_converted_to_utc(tmp_path):
    # Summer time starts at 02:00 local time on 2024-03-31, when the offset changes from +01:00 to +02:00.
    local = ["00:00:00+01:00", "01:00:00+01:00", "03:00:00+02:00", "04:00:00+02:00"]
    path = tmp_path / "load.csv"
    path.write_text("time,load\n" + "\n".join(f"2024-03-31 {clock},{100 + h}" for h, clock in enumerate(local)) + "\n")

    times, values, dropped = read_series(path, {"time": "time", "target": "load", "time_format": None, "duplicates": "mean"})

    assert [str(t) for t in times] == ["2024-03-30 23:00:00", "2024-03-31 00:00:00", "2024-03-31 01:00:00", "2024-03-31 02:00:00"]
    assert values.tolist() == [100.0, 101.0, 102.0, 103.0]
    assert dropped == 0


@pytest.mark.parametrize("cell", ["", "NA", "n/a"])
def test_empty_cell_is_missing_hour(tmp_path, cell):
    path = tmp_path / "load.csv"
    path.write_text("time,load\n" + "\n".join(f"2024-01-01 {h:02d}:00:00,{cell if h == 10 else 100 + h}" for h in range(24)) + "\n")

    times, values, dropped = read_series(path, {"time": "time", "target": "load", "time_format": None, "duplicates": "mean"})

    assert dropped == 0
    assert len(times) == 23
    assert pd.Timestamp("2024-01-01 10:00:00") not in times
    assert values.tolist() == [100.0 + h for h in range(24) if h != 10]


@pytest.mark.parametrize("present, lookback, horizon, expected", [
    ([1, 1, 1, 1, 1, 1], 2, 1, [1, 2, 3, 4]),
    ([1, 1, 0, 1, 1, 1, 1], 2, 1, [4, 5]),
    ([1, 1, 1, 0, 1, 1, 1], 2, 1, [1, 5]),
    ([1, 1, 1, 1, 0, 1], 1, 2, [0, 1]),
    ([1, 1, 1, 1], 3, 1, [2]),
    ([1, 1, 1], 3, 1, []),
    ([], 1, 1, []),
])
def test_window_ends_table(present, lookback, horizon, expected):
    assert window_ends(np.array(present, dtype=bool), lookback, horizon).tolist() == expected


def test_scaling_uses_train_hours_only(tmp_path):
    values = [float(h * h) for h in range(40)]
    path = write_series(tmp_path, values)

    data = load_series(settings_for(path, lookback=2, horizon=1, val_fraction=0.25, test_fraction=0.25))

    train_hours = np.array(values[:20])
    assert data.info["mean"] == pytest.approx(train_hours.mean())
    assert data.info["std"] == pytest.approx(train_hours.std())
    assert data.info["mean"] != pytest.approx(np.mean(values))
    expected_first = (np.array(values[0:2]) - train_hours.mean()) / train_hours.std()
    assert data.train.x[0, :2].tolist() == pytest.approx(expected_first.tolist(), rel=1e-6)
    expected_last_val = (values[29] - train_hours.mean()) / train_hours.std()
    assert data.val.y[-1].item() == pytest.approx(expected_last_val, rel=1e-6)


def test_seasonal_naive_values(tmp_path):
    hours = [h for h in range(400) if h != 50]
    path = write_series(tmp_path, [1000.0 + h for h in hours], hours=hours)

    data = load_series(settings_for(path, lookback=3, horizon=2))

    for split in (data.train, data.val, data.test):
        naive_hours = np.array(target_hours(split)) - 168
        known = (naive_hours >= 0) & (naive_hours != 50)
        assert np.isnan(split.naive.numpy()[~known]).all()
        assert split.naive.numpy()[known].tolist() == (1000.0 + naive_hours[known]).tolist()
        assert split.actual.tolist() == [1000.0 + hour for hour in target_hours(split)]
    assert data.info["seasonal_lag"] == 168


@pytest.mark.parametrize("horizon, lag", [(1, 168), (24, 168), (168, 168), (169, 336), (400, 504)])
def test_seasonal_lag_table(horizon, lag):
    assert seasonal_lag(horizon) == lag


def test_calendar_features_of_one_hour():
    # 2018-08-03 18:00 is a Friday (weekday 4) in August (month index 7).
    features = calendar_features(pd.DatetimeIndex(["2018-08-03 18:00:00"]))[0]
    angles = [2 * np.pi * 18 / 24, 2 * np.pi * 4 / 7, 2 * np.pi * 7 / 12]
    expected = [f(angle) for angle in angles for f in (np.sin, np.cos)]

    assert features.tolist() == pytest.approx(expected)


def test_calendar_features_of_target_hour(tmp_path):
    path = write_series(tmp_path, [100.0 + h % 7 for h in range(60)])
    data = load_series(settings_for(path, lookback=3, horizon=2))

    expected = calendar_features(pd.DatetimeIndex(data.train.times))
    assert data.train.x[:, 3:].numpy() == pytest.approx(expected.astype(np.float32))


def test_named_data_set_found_in_data_dir(tmp_path, monkeypatch):
    from objectives import DATASETS, DataSource

    write_series(tmp_path, [100.0 + h % 5 for h in range(60)], name="hourly.csv")
    monkeypatch.setitem(DATASETS, "hourly_test", DataSource(loader="objectives.series:load_series", file="hourly.csv"))

    data = load_series({"name": "hourly_test", "dir": str(tmp_path), "time": "time", "target": "load", "lookback": 3, "horizon": 2})

    assert data.name == "hourly_test"
    assert len(data.train) + len(data.val) + len(data.test) > 0


def test_fingerprint_follows_data_and_settings(tmp_path):
    path = write_series(tmp_path, [100.0 + h % 5 for h in range(60)])
    first = load_series(settings_for(path, lookback=3, horizon=2))
    again = load_series(settings_for(path, lookback=3, horizon=2))
    other = load_series(settings_for(path, lookback=4, horizon=2))

    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint


def invalid_file_cases(tmp_path):
    """Return (file text or None for no file, settings, expected message with {path} for the file)."""
    good = "time,load\n" + "\n".join(f"2024-01-01 {h:02d}:00:00,{100 + h}" for h in range(24)) + "\n"
    return [
        (None, {}, "data.path: '{path}' not found. Give an existing file or folder."),
        ("", {}, "data.path: cannot read '{path}' as CSV (No columns to parse from file). Give a comma-separated text file with a header row."),
        (b"\x89PNG\r\n\x1a\n\x00\x00", {}, "data.path: cannot read '{path}' as CSV ('utf-8' codec can't decode byte 0x89 in position 0: invalid start byte). Give a comma-separated text file with a header row."),
        ("time,load\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,2,3\n", {}, "data.path: cannot read '{path}' as CSV (Error tokenizing data. C error: Expected 2 fields in line 3, saw 3). Give a comma-separated text file with a header row."),
        (good, {"time": "Datetime"}, "data.time: column 'Datetime' not found in {path}; columns: time, load. Set data.time to one of them."),
        (good, {"target": "PJME_MW"}, "data.target: column 'PJME_MW' not found in {path}; columns: time, load. Set data.target to one of them."),
        (good.replace("2024-01-01 05:00:00", "2024-01-01 5 o'clock"), {},
         "data.time: value \"2024-01-01 5 o'clock\" on line 7 of {path} does not parse with format '%Y-%m-%d %H:%M:%S'. Set data.time_format to the strptime format of column 'time'."),
        (good, {"time_format": "%d/%m/%Y %H:%M"},
         "data.time: value '2024-01-01 00:00:00' on line 2 of {path} does not parse with format '%d/%m/%Y %H:%M'. Set data.time_format to the strptime format of column 'time'."),
        (good, {"time_format": "%Y-%Q"},
         "data.time: column 'time' of {path} does not parse with format '%Y-%Q' ('Q' is a bad directive in format '%Y-%Q'); first value '2024-01-01 00:00:00'. Set data.time_format to the strptime format of the column."),
        (good.replace(",105\n", ",high\n"), {},
         "data.target: column 'load' must contain finite numbers; got 'high' on line 7 of {path}. Fix that row or leave the cell empty to mark a missing hour."),
        (good.replace(",105\n", ",inf\n"), {},
         "data.target: column 'load' must contain finite numbers; got 'inf' on line 7 of {path}. Fix that row or leave the cell empty to mark a missing hour."),
        (good, {"lookback": 168},
         "data: no train window of 192 consecutive hours (lookback 168 + horizon 24) in {path}, which has 24 hours. Lower data.lookback or data.horizon, or give a longer series."),
        (good, {"lookback": 3, "horizon": 2},
         "data: no val window of 5 consecutive hours (lookback 3 + horizon 2) in {path}, which has 24 hours. Lower data.lookback or data.horizon, or give a longer series."),
        (good.replace("2024-01-01 05:00:00", "2024-01-01 05:30:00"), {},
         "data.time: times must be whole hours apart; '2024-01-01 05:30:00' is 5.5 hours after the first time '2024-01-01 00:00:00'. Resample the series to hourly values."),
        ("time,load\n" + "\n".join(f"2024-01-01 {h:02d}:00:00,7" for h in range(24)) + "\n", {"lookback": 1, "horizon": 1},
         "data.target: column 'load' is constant in the train split (7), so there is nothing to forecast. Give a series that varies."),
        ("time,load\n", {}, "data.target: the file has no values. Give a file with at least one row of data."),
    ]


def test_invalid_files_rejected(tmp_path):
    for number, (text, options, expected) in enumerate(invalid_file_cases(tmp_path)):
        path = tmp_path / f"case{number}.csv"
        if isinstance(text, bytes):
            path.write_bytes(text)
        elif text is not None:
            path.write_text(text)

        with pytest.raises(TunerError) as raised:
            load_series(settings_for(path, **options))

        assert raised.value.problems == [expected.format(path=path)], number


def test_folder_rejected(tmp_path):
    with pytest.raises(TunerError) as raised:
        load_series(settings_for(tmp_path))

    assert raised.value.problems == [f"data.path: cannot read '{tmp_path}' as CSV ([Errno 21] Is a directory: '{tmp_path}'). Give a comma-separated text file with a header row."]


@pytest.mark.parametrize("options, expected", [
    ({"horizn": 24}, "data.horizn: unknown key in data 'horizn'. Did you mean 'horizon'? Allowed: dir, duplicates, horizon, loader, lookback, name, path, target, test_fraction, time, time_format, val_fraction."),
    ({"time": None}, "data.time: missing. Set data.time to the name of the time column."),
    ({"target": ""}, "data.target: missing. Set data.target to the name of the target column."),
    ({"horizon": 0}, "data.horizon: must be a whole number of hours >= 1; got 0."),
    ({"lookback": 2.5}, "data.lookback: must be a whole number of hours >= 1; got 2.5."),
    ({"lookback": True}, "data.lookback: must be a whole number of hours >= 1; got True."),
    ({"val_fraction": 0.5}, "data.val_fraction: must be a fraction in (0, 0.5); got 0.5."),
    ({"test_fraction": 0}, "data.test_fraction: must be a fraction in (0, 0.5); got 0."),
    ({"duplicates": "max"}, "data.duplicates: unknown rule 'max'. Allowed: first, last, mean."),
    ({"time_format": 5}, "data.time_format: must be a strptime format such as '%Y-%m-%d %H:%M:%S'; got 5."),
])
def test_invalid_settings_rejected(tmp_path, options, expected):
    path = write_series(tmp_path, [100.0 + h for h in range(60)])

    with pytest.raises(TunerError) as raised:
        load_series(settings_for(path, **options))

    assert raised.value.problems == [expected]


def test_path_or_name_required():
    with pytest.raises(TunerError) as raised:
        load_series({"time": "time", "target": "load"})

    assert raised.value.problems == ["data: missing 'path'. Set data.path to your data file or folder."]
