from leaky_notes.client import count_words


def test_count_words():
    assert count_words({"body": "one two three"}) == 3


def test_count_words_empty_note():
    assert count_words({}) == 0
