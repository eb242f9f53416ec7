// Types of the small parser the metrics test scrapes with (the package ships none).
declare module 'parse-prometheus-text-format' {
  export interface PromSample {
    labels?: Record<string, string>
    value?: string
    buckets?: Record<string, string>
    count?: string
    sum?: string
  }
  export interface PromFamily {
    name: string
    help: string
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    metrics: PromSample[]
  }
  export default function parse(text: string): PromFamily[]
}
