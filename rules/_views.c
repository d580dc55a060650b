/* The squeezed and homophone views of a normalised text, UTF-8 encoded, in one pass.
 *
 * The rule engine scans both views as bytes. In Python they take two table conversions and two encodes
 * per message (rules.normalise.squeezer, rules.homophones.folder); here one loop reads each character
 * once and writes both encodings. The table is built in Python (rules/views.py) and passed in: for
 * every code point of the Basic Multilingual Plane, 0 when the squeezed view drops it (a separator), or
 * the code point that stands for it in the homophone view (itself when it is not folded). A text with a
 * character beyond the plane is left to the Python path (None), which knows those too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static Py_ssize_t put_utf8(char *out, Py_UCS4 c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
}

static PyObject *squeeze_fold(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "squeeze_fold(text: str, table: buffer of 65536 uint16)");
        return NULL;
    }
    PyObject *text = args[0];
    if (PyUnicode_READY(text) < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_4BYTE_KIND)
        Py_RETURN_NONE;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len != 0x10000 * (Py_ssize_t)sizeof(uint16_t)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the table holds 65536 uint16 values");
        return NULL;
    }
    const uint16_t *table = (const uint16_t *)view.buf;
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *squeezed = PyBytes_FromStringAndSize(NULL, 3 * n);
    PyObject *folded = PyBytes_FromStringAndSize(NULL, 3 * n);
    if (squeezed == NULL || folded == NULL) {
        PyBuffer_Release(&view);
        Py_XDECREF(squeezed);
        Py_XDECREF(folded);
        return NULL;
    }
    char *s = PyBytes_AS_STRING(squeezed);
    char *f = PyBytes_AS_STRING(folded);
    Py_ssize_t ns = 0, nf = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_UCS4 to = table[c];
        if (to == 0)
            continue;
        ns += put_utf8(s + ns, c);
        nf += put_utf8(f + nf, to);
    }
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&squeezed, ns) < 0) {
        Py_DECREF(folded);
        return NULL;
    }
    if (_PyBytes_Resize(&folded, nf) < 0) {
        Py_DECREF(squeezed);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(squeezed);
        Py_DECREF(folded);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, squeezed);
    PyTuple_SET_ITEM(pair, 1, folded);
    return pair;
}

static PyMethodDef methods[] = {
    {"squeeze_fold", (PyCFunction)(void (*)(void))squeeze_fold, METH_FASTCALL,
     "squeeze_fold(text, table) -> (squeezed UTF-8, homophone UTF-8), or None for a text beyond the BMP"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "rules._views", NULL, 0, methods};

PyMODINIT_FUNC PyInit__views(void)
{
    return PyModule_Create(&module);
}
