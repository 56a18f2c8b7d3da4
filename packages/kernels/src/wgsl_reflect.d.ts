// wgsl_reflect's bare import fails under Node (its package points "main" at a CommonJS-less
// bundle), so the registry imports the ES module file directly and declares the part it uses.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export interface TypeInfo {
    name: string;
    size: number;
    format?: TypeInfo;
    count?: number;
    members?: MemberInfo[];
  }
  export interface MemberInfo {
    name: string;
    offset: number;
    size: number;
    type: TypeInfo;
  }
  export interface StructInfo extends TypeInfo {
    members: MemberInfo[];
  }
  export interface VariableInfo {
    name: string;
    group: number;
    binding: number;
    /** 0 uniform, 1 storage, 2 texture, 3 sampler, 4 storage texture */
    resourceType: number;
    access: string;
    type: TypeInfo;
    size: number;
  }
  export interface FunctionInfo {
    name: string;
    stage: string | null;
    workgroupSize: [number, number, number] | null;
  }
  export class WgslReflect {
    constructor(code: string);
    getBindGroups(): VariableInfo[][];
    getStructInfo(name: string): StructInfo | null;
    entry: { compute: FunctionInfo[] };
  }
}
