"""Which globals a pickle may import.

The verdict is allow-list based: a ``(module, name)`` pair is safe only if it is listed
here *exactly* (never by prefix, never through a dotted attribute path). Everything else
is flagged; the deny-list below only decides *how loudly* (``dangerous`` vs
``suspicious``), so a payload that dodges it is still caught.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterable

from mgattest.inspect._estimators import estimator_globals
from mgattest.inspect._report import DANGEROUS, SUSPICIOUS

Pair = tuple[str, str]


def _pairs(module: str, *names: str) -> set[Pair]:
    return {(module, n) for n in names}


_BUILTIN_CONTAINERS = _pairs(
    "builtins", "dict", "list", "tuple", "set", "frozenset", "bytearray", "bytes", "str",
    "int", "float", "complex", "bool", "slice", "range", "object", "NoneType", "Ellipsis",
    "NotImplemented",
)

_STDLIB = (
    _pairs("collections", "OrderedDict", "defaultdict", "deque", "Counter")
    | _pairs("copyreg", "_reconstructor")
    | _pairs("datetime", "datetime", "date", "time", "timedelta", "timezone")
    | _pairs("decimal", "Decimal")
    | _pairs("fractions", "Fraction")
    | _pairs("uuid", "UUID")
    | _pairs("argparse", "Namespace")
    | _pairs("pathlib", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path")
    | _pairs("enum", "Enum")
    | _pairs("_codecs", "encode")  # protocol 0-2 bytes: _codecs.encode(str, 'latin1')
    | _pairs("random", "Random")
)

# Pure-math ufuncs that sklearn FunctionTransformers and friends pickle by reference.
UFUNCS = (
    "absolute", "add", "arccos", "arcsin", "arctan", "arctan2", "cbrt", "ceil", "clip",
    "cos", "cosh", "divide", "exp", "exp2", "expm1", "fabs", "floor", "log", "log10",
    "log1p", "log2", "maximum", "minimum", "multiply", "negative", "power", "reciprocal",
    "rint", "sign", "sin", "sinh", "sqrt", "square", "subtract", "tan", "tanh",
    "true_divide", "floor_divide", "mod", "remainder", "logaddexp", "hypot", "isnan",
    "isfinite", "isinf", "equal", "not_equal", "less", "greater", "less_equal",
    "greater_equal", "logical_and", "logical_or", "logical_not", "logical_xor",
)

_NUMPY: set[Pair] = set()
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY |= _pairs(_mod, "_reconstruct", "scalar")
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY |= _pairs(_mod, "_frombuffer")
_NUMPY |= _pairs("numpy", "ndarray", "dtype", "matrix", "float64", "float32", "float16",
                 "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64",
                 "bool_", "complex64", "complex128", "str_", "bytes_", "object_", *UFUNCS)
_NUMPY |= _pairs("numpy.dtypes", *(f"{t}DType" for t in (
    "Float64", "Float32", "Float16", "Int64", "Int32", "Int16", "Int8", "UInt64", "UInt32",
    "UInt16", "UInt8", "Bool", "Complex64", "Complex128", "Str", "Bytes", "Object",
    "DateTime64", "TimeDelta64", "Void")))
_NUMPY |= _pairs("numpy.ma.core", "_mareconstruct", "MaskedArray")
_NUMPY |= _pairs("numpy.random._pickle", "__randomstate_ctor", "__generator_ctor",
                 "__bit_generator_ctor")
_NUMPY |= _pairs("numpy.random.mtrand", "RandomState")
_NUMPY |= _pairs("numpy.random._generator", "Generator")
for _bg in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"):
    _NUMPY |= _pairs(f"numpy.random._{_bg.lower()}", _bg)
_NUMPY |= _pairs("numpy.random.bit_generator", "SeedSequence", "SeedlessSeedSequence",
                 "__pyx_unpickle_SeedSequence", "__pyx_unpickle_SeedlessSeedSequence")

_TORCH_DTYPES = (
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32",
    "uint64", "qint8", "quint8", "qint32",
)
_TORCH_STORAGES = (
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
    "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
    "ComplexFloatStorage", "ComplexDoubleStorage", "UntypedStorage", "TypedStorage",
)
_TORCH = (
    _pairs("torch._utils", "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3",
           "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor",
           "_rebuild_sparse_tensor", "_rebuild_nested_tensor", "_rebuild_meta_tensor_no_storage",
           "_rebuild_wrapper_subclass", "_rebuild_device_tensor_from_numpy")
    | _pairs("torch._tensor", "_rebuild_from_type_v2", "_rebuild_from_type", "Tensor")
    | _pairs("torch", "Size", "device", "Tensor", "layout", "memory_format",
             "per_tensor_affine", "strided", "sparse_coo", "contiguous_format",
             "channels_last", "preserve_format", *_TORCH_DTYPES, *_TORCH_STORAGES)
    | _pairs("torch.storage", "UntypedStorage", "TypedStorage", "_load_from_bytes")
    | _pairs("torch.nn.parameter", "Parameter", "Buffer", "UninitializedParameter")
    | _pairs("torch.serialization", "_get_layout")
)
# torch.storage._load_from_bytes runs torch.load on nested bytes: never allowed.
_TORCH.discard(("torch.storage", "_load_from_bytes"))

_NN = {
    "linear": ("Linear", "Identity", "Bilinear", "LazyLinear"),
    "conv": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
             "ConvTranspose3d"),
    "activation": ("ReLU", "ReLU6", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax",
                   "LogSoftmax", "LeakyReLU", "ELU", "SELU", "Mish", "Hardswish",
                   "Hardtanh", "Softplus", "PReLU", "MultiheadAttention", "GLU"),
    "container": ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"),
    "normalization": ("LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm"),
    "batchnorm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "instancenorm": ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"),
    "dropout": ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"),
    "sparse": ("Embedding", "EmbeddingBag"),
    "pooling": ("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
                "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"),
    "rnn": ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"),
    "flatten": ("Flatten", "Unflatten"),
    "transformer": ("Transformer", "TransformerEncoder", "TransformerDecoder",
                    "TransformerEncoderLayer", "TransformerDecoderLayer"),
    "padding": ("ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad2d"),
    "upsampling": ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"),
    "pixelshuffle": ("PixelShuffle", "PixelUnshuffle"),
    "distance": ("CosineSimilarity", "PairwiseDistance"),
    "loss": ("MSELoss", "CrossEntropyLoss", "L1Loss", "NLLLoss", "BCELoss",
             "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss", "KLDivLoss"),
}
for _sub, _names in _NN.items():
    _TORCH |= _pairs(f"torch.nn.modules.{_sub}", *_names)
_TORCH |= _pairs("torch.nn.modules.linear", "NonDynamicallyQuantizableLinear")
# pure activation functions that modules keep as attributes (TransformerEncoderLayer)
_TORCH |= _pairs("torch.nn.functional", "relu", "gelu", "silu", "tanh", "sigmoid",
                 "softmax", "log_softmax", "leaky_relu", "elu", "selu", "mish", "hardswish",
                 "softplus", "glu")
_TORCH |= _pairs("torch.optim.sgd", "SGD") | _pairs("torch.optim.adam", "Adam") | _pairs(
    "torch.optim.adamw", "AdamW") | _pairs("torch.optim.rmsprop", "RMSprop") | _pairs(
    "torch.optim.adagrad", "Adagrad")

_SKLEARN_ESTIMATORS = {
    "sklearn.pipeline": ("Pipeline", "FeatureUnion"),
    "sklearn.compose._column_transformer": ("ColumnTransformer", "_RemainderColsList"),
    "sklearn.compose._target": ("TransformedTargetRegressor",),
    "sklearn.preprocessing._data": ("StandardScaler", "MinMaxScaler", "MaxAbsScaler",
                                    "RobustScaler", "Normalizer", "Binarizer",
                                    "QuantileTransformer", "PowerTransformer"),
    "sklearn.preprocessing._encoders": ("OneHotEncoder", "OrdinalEncoder"),
    "sklearn.preprocessing._label": ("LabelEncoder", "LabelBinarizer", "MultiLabelBinarizer"),
    "sklearn.preprocessing._polynomial": ("PolynomialFeatures", "SplineTransformer"),
    "sklearn.preprocessing._discretization": ("KBinsDiscretizer",),
    "sklearn.preprocessing._function_transformer": ("FunctionTransformer",),
    "sklearn.impute._base": ("SimpleImputer", "MissingIndicator"),
    "sklearn.linear_model._logistic": ("LogisticRegression", "LogisticRegressionCV"),
    "sklearn.linear_model._base": ("LinearRegression",),
    "sklearn.linear_model._ridge": ("Ridge", "RidgeClassifier", "RidgeCV"),
    "sklearn.linear_model._coordinate_descent": ("Lasso", "ElasticNet", "LassoCV"),
    "sklearn.linear_model._stochastic_gradient": ("SGDClassifier", "SGDRegressor"),
    "sklearn.linear_model._perceptron": ("Perceptron",),
    "sklearn.tree._classes": ("DecisionTreeClassifier", "DecisionTreeRegressor",
                              "ExtraTreeClassifier", "ExtraTreeRegressor"),
    "sklearn.tree._tree": ("Tree",),
    "sklearn.ensemble._forest": ("RandomForestClassifier", "RandomForestRegressor",
                                 "ExtraTreesClassifier", "ExtraTreesRegressor"),
    "sklearn.ensemble._gb": ("GradientBoostingClassifier", "GradientBoostingRegressor"),
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": (
        "HistGradientBoostingClassifier", "HistGradientBoostingRegressor"),
    "sklearn.ensemble._weight_boosting": ("AdaBoostClassifier", "AdaBoostRegressor"),
    "sklearn.ensemble._bagging": ("BaggingClassifier", "BaggingRegressor"),
    "sklearn.ensemble._voting": ("VotingClassifier", "VotingRegressor"),
    "sklearn.svm._classes": ("SVC", "SVR", "LinearSVC", "LinearSVR", "NuSVC"),
    "sklearn.neighbors._classification": ("KNeighborsClassifier",),
    "sklearn.neighbors._regression": ("KNeighborsRegressor",),
    "sklearn.naive_bayes": ("GaussianNB", "MultinomialNB", "BernoulliNB"),
    "sklearn.decomposition._pca": ("PCA",),
    "sklearn.decomposition._truncated_svd": ("TruncatedSVD",),
    "sklearn.cluster._kmeans": ("KMeans", "MiniBatchKMeans"),
    "sklearn.feature_extraction.text": ("CountVectorizer", "TfidfVectorizer",
                                        "TfidfTransformer"),
    "sklearn.feature_selection._univariate_selection": ("SelectKBest",),
    "sklearn.feature_selection._variance_threshold": ("VarianceThreshold",),
    "sklearn.neural_network._multilayer_perceptron": ("MLPClassifier", "MLPRegressor"),
    "sklearn.utils._bunch": ("Bunch",),
    "sklearn._loss.loss": ("HalfBinomialLoss", "HalfSquaredError", "HalfMultinomialLoss",
                           "HalfPoissonLoss", "AbsoluteError"),
    "sklearn._loss.link": ("IdentityLink", "LogitLink", "LogLink", "MultinomialLogit",
                           "Interval"),
    "sklearn.ensemble._gb_losses": ("BinomialDeviance", "LeastSquaresError"),
    "sklearn.dummy": ("DummyClassifier", "DummyRegressor"),
    "sklearn._loss._loss": tuple(f"Cy{n}" for n in (
        "HalfBinomialLoss", "HalfSquaredError", "HalfMultinomialLoss", "HalfPoissonLoss",
        "AbsoluteError", "HalfGammaLoss", "HalfTweedieLoss", "HalfTweedieLossIdentity",
        "PinballLoss", "HuberLoss", "ExponentialLoss")),
    "sklearn.ensemble._hist_gradient_boosting.binning": ("_BinMapper",),
    "sklearn.ensemble._hist_gradient_boosting.predictor": ("TreePredictor",),
    # Cython unpickle helpers: newObj(cls) is cls.__new__(cls); cls is checked separately
    "sklearn.neighbors._kd_tree": ("KDTree", "newObj"),
    "sklearn.neighbors._ball_tree": ("BallTree", "newObj"),
    "sklearn.metrics._dist_metrics": ("newObj", "EuclideanDistance64",
                                      "ManhattanDistance64", "MinkowskiDistance64",
                                      "ChebyshevDistance64", "EuclideanDistance32"),
    "sklearn.neural_network._stochastic_optimizers": ("AdamOptimizer", "SGDOptimizer"),
    "sklearn.linear_model._sgd_fast": ("Hinge", "Log", "ModifiedHuber", "SquaredHinge",
                                       "SquaredLoss", "Huber", "EpsilonInsensitive",
                                       "SquaredEpsilonInsensitive"),
}
_SKLEARN: set[Pair] = set()
for _mod, _names in _SKLEARN_ESTIMATORS.items():
    _SKLEARN |= _pairs(_mod, *_names)

_JOBLIB = _pairs("joblib.numpy_pickle", "NumpyArrayWrapper")

SAFE_GLOBALS: frozenset[Pair] = frozenset(
    _BUILTIN_CONTAINERS | _STDLIB | _NUMPY | _TORCH | _SKLEARN
) | estimator_globals()  # generated: scripts/gen_estimator_allowlist.py
"""Globals any pickle may import. joblib's array wrapper is admitted only in joblib mode."""

JOBLIB_GLOBALS: frozenset[Pair] = frozenset(_JOBLIB)

# --- severity only: modules / names whose import means code execution or I/O -----------
_DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "sys", "runpy", "importlib",
    "imp", "code", "codeop", "pip", "webbrowser", "socket", "shutil", "pty", "ctypes",
    "multiprocessing", "marshal", "pickle", "_pickle", "cPickle", "dill", "cloudpickle",
    "types", "functools", "operator", "_operator", "asyncio", "threading", "_thread",
    "signal", "http", "urllib", "urllib2", "requests", "httpx", "ftplib", "smtplib",
    "telnetlib", "pdb", "bdb", "timeit", "profile", "cProfile", "trace", "doctest", "pydoc",
    "distutils", "setuptools", "commands", "popen2", "platform", "tempfile", "glob",
    "io", "_io", "zipimport", "pkgutil", "site", "sysconfig", "builtins", "__builtin__",
    "__main__", "exec", "venv", "ensurepip", "inspect", "gc", "weakref", "atexit",
    "shelve", "dbm", "sqlite3", "select", "selectors", "ssl", "mmap", "fcntl", "resource",
    "tarfile", "zipfile", "logging", "idlelib", "tkinter", "turtle", "xmlrpc",
    "numpy.testing", "torch.hub", "torch.jit", "torch._ops", "torch.ops", "keras", "tensorflow",
})
_DANGEROUS_NAMES = frozenset({
    "system", "popen", "popen2", "popen3", "popen4", "exec", "execv", "execve", "execl",
    "execlp", "execvp", "spawn", "spawnl", "spawnv", "spawnve", "eval", "compile",
    "__import__", "import_module", "getattr", "setattr", "delattr", "globals", "locals",
    "vars", "open", "input", "breakpoint", "run", "call", "check_call", "check_output",
    "Popen", "getoutput", "getstatusoutput", "load", "loads", "runstring", "run_path",
    "run_module", "interact", "InteractiveInterpreter", "InteractiveConsole", "partial",
    "reduce", "attrgetter", "methodcaller", "itemgetter", "apply", "FunctionType",
    "CodeType", "LambdaType", "MethodType", "remove", "unlink", "rmtree", "rename", "kill",
    "fork", "create_connection", "urlopen", "_load_from_bytes", "write", "__reduce__",
})


def pair_set(extra_allowed: Iterable[Pair]) -> frozenset[Pair]:
    """``extra_allowed`` as a frozenset of ``(module, name)`` tuples (lists from YAML too)."""
    return frozenset((module, name) for module, name in extra_allowed)


def normalise(module: str, name: str, proto: int) -> Pair:
    """The (module, name) the unpickler actually imports (Python 2 aliases for proto < 3)."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        if module in _compat_pickle.IMPORT_MAPPING:
            return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


def is_dangerous(module: str, name: str) -> bool:
    """True when importing ``module.name`` can run code or touch the system."""
    root = module.split(".", 1)[0]
    if "." in name or module in _DANGEROUS_MODULES or root in _DANGEROUS_MODULES:
        return True
    if any(module.startswith(m + ".") for m in _DANGEROUS_MODULES):
        return True
    return name in _DANGEROUS_NAMES or name.startswith("__")


def classify(module: str, name: str, proto: int, *, extra_allowed: frozenset[Pair] = frozenset(),
             joblib: bool = False) -> tuple[bool, str | None]:
    """Decide one import: ``(allowed, severity_if_not_allowed)``.

    Both the literal names and their Python 3 equivalents are checked against the
    deny-list, so ``__builtin__.eval`` is as loud as ``builtins.eval``.
    """
    real = normalise(module, name, proto)
    if real in SAFE_GLOBALS or real in extra_allowed or (joblib and real in JOBLIB_GLOBALS):
        return True, None
    py3 = normalise(module, name, 0)
    if is_dangerous(*real) or is_dangerous(module, name) or is_dangerous(*py3):
        return False, DANGEROUS
    return False, SUSPICIOUS
