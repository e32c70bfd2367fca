package sparkplug

import (
	"fmt"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// DataSet is the value of a DataSet metric: a table with typed columns.
type DataSet struct {
	Columns []string
	Types   []DataType
	// Rows holds one value per column in each row, typed by the column's
	// DataType as a metric value would be; nil for a value left out.
	Rows [][]any
}

// Records returns the rows as maps from column name to value, the form
// that templates index most easily.
func (d DataSet) Records() []map[string]any {
	out := make([]map[string]any, len(d.Rows))
	for i, row := range d.Rows {
		rec := make(map[string]any, len(d.Columns))
		for j, v := range row {
			rec[d.Columns[j]] = v
		}
		out[i] = rec
	}
	return out
}

// dataSetColumnType reports whether t may type a data set column: the
// specification allows the scalar types only.
func dataSetColumnType(t DataType) bool {
	return t >= TypeInt8 && t <= TypeText
}

func dataSet(pd *sparkplugb.Payload_DataSet) (DataSet, error) {
	n := len(pd.GetColumns())
	if pd.NumOfColumns != nil && pd.GetNumOfColumns() != uint64(n) {
		return DataSet{}, failf(ErrInvalidValue, "DataSet: num_of_columns is %d but %d columns are named", pd.GetNumOfColumns(), n)
	}
	if len(pd.GetTypes()) != n {
		return DataSet{}, failf(ErrInvalidValue, "DataSet: %d columns but %d types", n, len(pd.GetTypes()))
	}
	d := DataSet{Columns: pd.GetColumns(), Types: make([]DataType, n), Rows: make([][]any, len(pd.GetRows()))}
	for i, t := range pd.GetTypes() {
		d.Types[i] = DataType(t)
		if !dataSetColumnType(d.Types[i]) {
			return DataSet{}, failf(ErrUnsupportedType, "DataSet: column %q: datatype %v", d.Columns[i], d.Types[i])
		}
	}
	for i, row := range pd.GetRows() {
		elems := row.GetElements()
		if len(elems) != n {
			return DataSet{}, failf(ErrInvalidValue, "DataSet: row %d has %d values for %d columns", i, len(elems), n)
		}
		d.Rows[i] = make([]any, n)
		for j, e := range elems {
			r := dataSetRaw(e)
			if r.field == fieldNone {
				continue
			}
			v, err := scalar(d.Types[j], r)
			if err != nil {
				return DataSet{}, fmt.Errorf("DataSet: row %d, column %q: %w", i, d.Columns[j], err)
			}
			d.Rows[i][j] = v
		}
	}
	return d, nil
}
