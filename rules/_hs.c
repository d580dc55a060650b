/* Hyperscan block-mode databases scanned without a Python call per match.
 *
 * The rule engine scans each message four to six times and only wants the set of pattern ids that
 * matched. The Python binding parses its arguments by keyword, releases and retakes the GIL around each
 * scan and again for each match, and calls a Python function per match with a tuple of five new
 * objects: about two thirds of the engine's time per message. Here a scan whose callback is this
 * module's ``add_to_set`` adds the ids to the set in C, the GIL held throughout (an SMS is scanned in a
 * microsecond or two). Any other callback is called as the binding calls it, so a Database here can
 * stand in for the binding's wherever the engine scans.
 *
 * Linked against the system's libhs (libhyperscan-dev); where it is not installed the extension is not
 * built and the engine scans with the binding (rules/native_scan.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <hs/hs.h>

static PyObject *add_to_set_function; /* this module's add_to_set, recognised by identity */

typedef struct {
    PyObject_HEAD
    hs_database_t *db;
    hs_scratch_t *scratch;
    int compiling; /* __init__ is compiling, the GIL released */
} Database;

typedef struct {
    PyObject *target; /* the set, or the Python callback */
    PyObject *context;
    int failed;
} ScanState;

static int add_id(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                  void *ctx)
{
    ScanState *state = (ScanState *)ctx;
    PyObject *key = PyLong_FromUnsignedLong(id);
    if (key == NULL || PySet_Add(state->target, key) < 0) {
        Py_XDECREF(key);
        state->failed = 1;
        return 1;
    }
    Py_DECREF(key);
    return 0;
}

static int call_python(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                       void *ctx)
{
    ScanState *state = (ScanState *)ctx;
    PyObject *result = PyObject_CallFunction(state->target, "IKKIO", id, from, to, flags, state->context);
    if (result == NULL) {
        state->failed = 1;
        return 1;
    }
    int halt = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (halt < 0) {
        state->failed = 1;
        return 1;
    }
    return halt; /* a true answer stops the scan, as with the binding */
}

static void Database_dealloc(Database *self)
{
    if (self->scratch != NULL)
        hs_free_scratch(self->scratch);
    if (self->db != NULL)
        hs_free_database(self->db);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* An int that fits an unsigned int, for an id or flags; (unsigned int)-1 with an exception set on error. */
static unsigned int as_unsigned_int(PyObject *value)
{
    unsigned long v = PyLong_AsUnsignedLong(value);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return (unsigned int)-1;
    if (v > UINT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "an id or flags value does not fit an unsigned int");
        return (unsigned int)-1;
    }
    return (unsigned int)v;
}

/* Database(expressions: list[bytes], ids: list[int], flags: list[int]), compiled in block mode, once.
 *
 * libhs compiles with the GIL released (a large rule set takes a fraction of a second, and a reload compiles
 * in a worker thread while the event loop goes on serving); the expressions are held in a tuple meanwhile,
 * so that no other thread can free them by changing the list. A Database is never compiled a second time:
 * that would free the database and scratch space that a scan under way (one whose Python callback runs)
 * is using. */
static int Database_init(Database *self, PyObject *args, PyObject *kwargs)
{
    PyObject *expressions, *ids, *flags;
    static char *keywords[] = {"expressions", "ids", "flags", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!", keywords, &PyList_Type, &expressions,
                                     &PyList_Type, &ids, &PyList_Type, &flags))
        return -1;
    if (self->db != NULL || self->compiling) {
        PyErr_SetString(PyExc_RuntimeError, "a Database is compiled once");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(expressions);
    if (n == 0 || PyList_GET_SIZE(ids) != n || PyList_GET_SIZE(flags) != n || n > UINT_MAX) {
        PyErr_SetString(PyExc_ValueError, "expressions, ids and flags: three lists of one non-zero length");
        return -1;
    }
    PyObject *held = PyList_AsTuple(expressions);
    if (held == NULL)
        return -1;
    const char **texts = PyMem_Malloc(n * sizeof(char *));
    unsigned int *id_values = PyMem_Malloc(n * sizeof(unsigned int));
    unsigned int *flag_values = PyMem_Malloc(n * sizeof(unsigned int));
    int status = -1;
    if (texts == NULL || id_values == NULL || flag_values == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *text = PyTuple_GET_ITEM(held, i);
        if (!PyBytes_Check(text) || (Py_ssize_t)strlen(PyBytes_AS_STRING(text)) != PyBytes_GET_SIZE(text)) {
            PyErr_SetString(PyExc_ValueError, "an expression is bytes without NUL");
            goto done;
        }
        texts[i] = PyBytes_AS_STRING(text);
        id_values[i] = as_unsigned_int(PyList_GET_ITEM(ids, i));
        if (PyErr_Occurred())
            goto done;
        flag_values[i] = as_unsigned_int(PyList_GET_ITEM(flags, i));
        if (PyErr_Occurred())
            goto done;
    }
    hs_database_t *db = NULL;
    hs_scratch_t *scratch = NULL;
    hs_compile_error_t *error = NULL;
    hs_error_t compiled, allocated = HS_SUCCESS;
    self->compiling = 1;
    Py_BEGIN_ALLOW_THREADS
    compiled =
        hs_compile_multi(texts, flag_values, id_values, (unsigned int)n, HS_MODE_BLOCK, NULL, &db, &error);
    if (compiled == HS_SUCCESS)
        allocated = hs_alloc_scratch(db, &scratch);
    Py_END_ALLOW_THREADS
    self->compiling = 0;
    if (compiled != HS_SUCCESS) {
        PyErr_SetString(PyExc_ValueError, error != NULL && error->message ? error->message : "compile failed");
        hs_free_compile_error(error);
        goto done;
    }
    if (allocated != HS_SUCCESS) {
        hs_free_database(db);
        PyErr_SetString(PyExc_MemoryError, "Hyperscan could not allocate its scratch space");
        goto done;
    }
    self->db = db;
    self->scratch = scratch;
    status = 0;
done:
    Py_DECREF(held);
    PyMem_Free(texts);
    PyMem_Free(id_values);
    PyMem_Free(flag_values);
    return status;
}

/* scan(data, callback, flags, context): as the binding's, positional; add_to_set adds ids in C. */
static PyObject *Database_scan(Database *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "scan(data, callback, flags, context)");
        return NULL;
    }
    if (self->db == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the database is not compiled");
        return NULL;
    }
    Py_buffer data;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (data.len > UINT_MAX) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "data too long to scan");
        return NULL;
    }
    ScanState state = {args[1], args[3], 0};
    match_event_handler handler = call_python;
    if (args[1] == add_to_set_function && PySet_Check(args[3])) {
        state.target = args[3];
        handler = add_id;
    }
    hs_error_t error = hs_scan(self->db, data.buf, (unsigned int)data.len, 0, self->scratch, handler, &state);
    if (error == HS_SCRATCH_IN_USE) {
        /* A scan of this database is under way, its Python callback running: this one is from inside that
         * callback, or from another thread the callback let run. libhs refuses before it reports any
         * match, so this scan runs again on scratch space of its own. */
        hs_scratch_t *own = NULL;
        error = hs_clone_scratch(self->scratch, &own);
        if (error == HS_SUCCESS)
            error = hs_scan(self->db, data.buf, (unsigned int)data.len, 0, own, handler, &state);
        hs_free_scratch(own);
    }
    PyBuffer_Release(&data);
    if (state.failed)
        return NULL;
    if (error != HS_SUCCESS && error != HS_SCAN_TERMINATED) {
        PyErr_Format(PyExc_RuntimeError, "Hyperscan scan failed (error %d)", (int)error);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Database_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Database_scan, METH_FASTCALL,
     "scan(data, callback, flags, context): report each match to callback(id, start, end, flags, context)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DatabaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rules._hs.Database",
    .tp_basicsize = sizeof(Database),
    .tp_dealloc = (destructor)Database_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A Hyperscan block-mode database: Database(expressions, ids, flags)",
    .tp_methods = Database_methods,
    .tp_init = (initproc)Database_init,
    .tp_new = PyType_GenericNew,
};

/* add_to_set(id, start, end, flags, hits): the callback that adds each id to the set hits. */
static PyObject *add_to_set(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PySet_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "add_to_set(id, start, end, flags, hits: set)");
        return NULL;
    }
    if (PySet_Add(args[4], args[0]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *version(PyObject *module, PyObject *unused)
{
    return PyUnicode_FromString(hs_version());
}

static PyMethodDef methods[] = {
    {"add_to_set", (PyCFunction)(void (*)(void))add_to_set, METH_FASTCALL,
     "add_to_set(id, start, end, flags, hits) -> None: adds id to the set hits"},
    {"version", version, METH_NOARGS, "the version of the libhs this module runs on"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "rules._hs", NULL, 0, methods};

PyMODINIT_FUNC PyInit__hs(void)
{
    if (PyType_Ready(&DatabaseType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    add_to_set_function = PyObject_GetAttrString(m, "add_to_set");
    if (add_to_set_function == NULL || PyModule_AddObjectRef(m, "Database", (PyObject *)&DatabaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
