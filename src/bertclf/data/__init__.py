"""Reading labelled text from files or frames, label encoding, stratified splits and leakage checks.

Everything that can be wrong with a user's data is detected here and reported as a one-line
:class:`BertclfError`, before any model is loaded. :mod:`~bertclf.data.tables` reads files and
:mod:`~bertclf.data.writing` writes them, :mod:`~bertclf.data.labels` turns a source into :class:`Examples`,
:mod:`~bertclf.data.splits` holds out validation and test parts; the names other packages use are re-exported here.
"""

from bertclf.data.labels import (
    DataSource,
    Examples,
    as_frame,
    encode_labels,
    join_texts,
    load_examples,
    read_label_names,
    sorted_classes,
    training_classes,
)
from bertclf.data.splits import Splits, find_leaks, iterative_split, make_splits
from bertclf.data.tables import (
    DELIMITED_SUFFIXES,
    SUPPORTED_EXTENSIONS,
    count_rows,
    demo_dataset_path,
    iter_table,
    read_table,
)
from bertclf.data.writing import TableWriter, check_output_extension, check_writable, delimited_text, write_table

__all__ = [
    "DELIMITED_SUFFIXES",
    "SUPPORTED_EXTENSIONS",
    "DataSource",
    "Examples",
    "Splits",
    "TableWriter",
    "as_frame",
    "check_output_extension",
    "check_writable",
    "count_rows",
    "delimited_text",
    "demo_dataset_path",
    "encode_labels",
    "find_leaks",
    "iter_table",
    "iterative_split",
    "join_texts",
    "load_examples",
    "make_splits",
    "read_label_names",
    "read_table",
    "sorted_classes",
    "training_classes",
    "write_table",
]
