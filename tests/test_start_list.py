import pytest

from races.organizer.start_list import StartListError, export_start_list, parse_start_list


def test_a_good_start_list_is_read_with_optional_columns():
    rows = parse_start_list(
        "\ufeffBib,Name,Gender,Category,Pace\n"
        "1,Jane Smith,F,W40,5:30\n"
        "2,John Doe,male,,330\n"
        "3,Alex Roe,other,X,\n"
    )
    assert [(r.bib, r.gender, r.category, r.flat_pace_s_per_km) for r in rows] == [
        ("1", "female", "W40", 330.0),
        ("2", "male", "", 330.0),
        ("3", "other", "X", None),
    ]


def test_every_bad_row_is_reported_with_its_line_number():
    with pytest.raises(StartListError) as refused:
        parse_start_list("bib,name,gender,pace\n1,Jane,F,5:30\n2,,M,\n1,Joe,M,\n4,Ann,Q,abc\n")
    assert refused.value.problems == [
        "line 3: name must be 1 to 200 characters",
        "line 4: bib 1 is already used on line 2",
        "line 5: gender 'Q' is not one of female, male, other",
        "line 5: pace 'abc' is not seconds per km or mm:ss",
    ]


def test_missing_columns_and_empty_lists_are_refused():
    with pytest.raises(StartListError, match="missing column"):
        parse_start_list("bib,name\n1,Jane\n")
    with pytest.raises(StartListError, match="no athletes"):
        parse_start_list("bib,name,gender\n")


def test_export_neutralises_spreadsheet_formulas(db):
    from races.models import Athlete

    athletes = [Athlete(bib="1", name='=HYPERLINK("http://x")', gender="male", category="+M40")]
    lines = export_start_list(athletes).splitlines()
    assert lines[1].startswith("1,\"'=HYPERLINK")
    assert ",'+M40," in lines[1]
